"""What the Foreman records about its own work, as opposed to the jobs it
watches: its heartbeat, and the notifications sent when the refinery gives up
on a job.

Both models lived in `common` before; they keep their tables (`db_table`), so a
database migrated before the move keeps its rows.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.db.models import Q
from django.utils import timezone

from common.models.choices import JobKind


class ForemanBeat(models.Model):
    """One row per Foreman process, updated after every pass, so that a health
    check (`manage.py foreman --check`) can tell whether a Foreman is alive."""

    name = models.CharField(max_length=255, unique=True, help_text="host:pid of the Foreman")
    started_at = models.DateTimeField(default=timezone.now)
    beat_at = models.DateTimeField(default=timezone.now)
    passes = models.PositiveBigIntegerField(default=0)
    last_pass_s = models.FloatField(default=0.0, help_text="how long the last pass took")
    last_pass = models.JSONField(default=dict, blank=True, help_text="what the last pass did")

    class Meta:
        db_table = "common_foremanbeat"
        ordering = ["-beat_at"]

    def __str__(self) -> str:
        return f"Foreman {self.name}, last beat {self.beat_at:%Y-%m-%d %H:%M:%S}"

    @classmethod
    def latest(cls) -> ForemanBeat | None:
        return cls.objects.order_by("-beat_at").first()

    def age(self) -> timedelta:
        return timezone.now() - self.beat_at


class Notification(models.Model):
    """Operators told that the refinery gave up on a job: one row per job attempt
    (unique), delivered by email and webhook by the Foreman. A row is written in
    the same transaction that gives up on the job, and delivery is retried until
    each configured channel took it, so a notification is neither lost nor sent
    twice."""

    job_kind = models.CharField(max_length=16, choices=JobKind.choices)
    job_id = models.BigIntegerField()
    subject = models.CharField(max_length=255)
    body = models.TextField()
    payload = models.JSONField(default=dict, help_text="what the webhook receives")
    created_at = models.DateTimeField(default=timezone.now)
    email_sent_at = models.DateTimeField(null=True, blank=True)
    webhook_sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    claimed_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text="a Foreman is sending it until then; no other sends it meanwhile",
    )

    class Meta:
        db_table = "common_notification"
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["job_kind", "job_id"], name="notification_once_per_job")
        ]
        indexes = [
            models.Index(
                fields=["created_at"],
                name="notification_undelivered",
                condition=Q(delivered_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return self.subject


class OperatorAction(models.Model):
    """An operator's retry, cancel, pause or resume, from the web or `manage.py
    jobs`: who did it, when, to what, and what came of it."""

    class Action(models.TextChoices):
        RETRY = "retry"
        CANCEL = "cancel"
        PAUSE = "pause"
        RESUME = "resume"

    action = models.CharField(max_length=16, choices=Action.choices)
    target = models.CharField(max_length=64, help_text="KIND:ID for a job, KIND for a kind")
    by = models.CharField(max_length=255, help_text="the admin user, or user@host for the CLI")
    at = models.DateTimeField(default=timezone.now)
    outcome = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} {self.target} by {self.by} at {self.at:%Y-%m-%d %H:%M:%S %Z}"


class SurveySchedule(models.Model):
    """Where a scheduled survey (REFINERY_SCHEDULED_SURVEYS) stands when the
    Foreman starts it (the local dispatcher; Nomad runs its own periodic jobs).

    `last_due_at` is the due time of the last run started: a Foreman moves it
    forward with a conditional UPDATE in the transaction that creates the survey
    job, so two Foremen cannot start the same due time twice, and a Foreman that
    was down starts the due time it missed once when it is back."""

    name = models.CharField(max_length=64, unique=True)
    cron = models.CharField(max_length=255, help_text="as configured when it last ran")
    first_seen_at = models.DateTimeField(
        default=timezone.now, help_text="when a Foreman first saw it: due times count from here"
    )
    last_due_at = models.DateTimeField(null=True, blank=True)
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_job = models.ForeignKey(
        "common.SurveyJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"scheduled survey {self.name} ({self.cron})"
