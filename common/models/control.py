"""What operators record about running the refinery, as opposed to the work
itself: the job kinds they paused."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from common.models.choices import JobKind


class PausedKind(models.Model):
    """A job kind nothing new is dispatched of until an operator resumes it.
    Jobs already dispatched finish; new and retried jobs wait as `created`."""

    kind = models.CharField(max_length=16, choices=JobKind.choices, unique=True)
    paused_at = models.DateTimeField(default=timezone.now)
    paused_by = models.CharField(max_length=255, blank=True, default="")
    reason = models.CharField(max_length=1000, blank=True, default="")

    class Meta:
        ordering = ["kind"]

    def __str__(self) -> str:
        return f"{self.kind} jobs paused since {self.paused_at:%Y-%m-%d %H:%M:%S}"

    @classmethod
    def is_paused(cls, kind: str) -> bool:
        return cls.objects.filter(kind=kind).exists()

    @classmethod
    def paused_kinds(cls) -> set[str]:
        return set(cls.objects.values_list("kind", flat=True))
