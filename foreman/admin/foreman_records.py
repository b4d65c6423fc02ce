"""The Foreman's records in the admin: notifications sent and its heartbeats.
Read-only, like all history."""

from __future__ import annotations

from django.contrib import admin

from common.models import job_model
from foreman.admin.base import ReadOnlyAdmin, admin_link
from foreman.models import ForemanBeat, Notification, OperatorAction


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("subject", "job_kind", "job_id", "created_at", "delivered_at", "attempts")
    list_filter = ("job_kind", "delivered_at")
    search_fields = ("subject", "=job_id")
    readonly_fields = (
        "job_link",
        "subject",
        "body",
        "payload",
        "created_at",
        "email_sent_at",
        "webhook_sent_at",
        "delivered_at",
        "attempts",
        "last_error",
    )
    fields = readonly_fields

    @admin.display(description="job")
    def job_link(self, notification: Notification) -> str:
        job = job_model(notification.job_kind).objects.filter(pk=notification.job_id).first()
        return admin_link(job)


@admin.register(ForemanBeat)
class ForemanBeatAdmin(ReadOnlyAdmin):
    list_display = ("name", "beat_at", "passes", "last_pass_s", "started_at")
    readonly_fields = ("name", "started_at", "beat_at", "passes", "last_pass_s", "last_pass")
    fields = readonly_fields


@admin.register(OperatorAction)
class OperatorActionAdmin(ReadOnlyAdmin):
    """Who retried, cancelled, paused or resumed what, and when (web and CLI)."""

    list_display = ("at", "action", "target", "by", "outcome")
    list_filter = ("action",)
    search_fields = ("target", "by")
    readonly_fields = ("at", "action", "target", "by", "outcome")
    fields = readonly_fields
