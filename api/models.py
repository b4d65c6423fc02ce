"""Basecalling engines: GPU servers outside the cluster that pull work through
the API (api/engines/). Each is a Django user of its own (its token is the
engine's credential) and this row, which names it; what it runs is recorded on
the ProcessorJobs themselves (runner/engines.py), not here."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Engine(models.Model):
    name = models.CharField(max_length=63, unique=True, help_text="as in /api/engines/<name>/")
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="engine",
        help_text="the engine's user: its API token authenticates the engine",
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_contact_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"engine {self.name}"

    def touch(self) -> None:
        """Record that the engine was heard from just now (at most once a second:
        an engine's requests come in bursts)."""
        now = timezone.now()
        if self.last_contact_at and (now - self.last_contact_at).total_seconds() < 1:
            return
        type(self).objects.filter(pk=self.pk).update(last_contact_at=now)
        self.last_contact_at = now
