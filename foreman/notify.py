"""Telling operators that the refinery gave up on a job.

Giving up writes a Notification row in the same transaction (see
`foreman.attempts.give_up`); `deliver_pending` then sends each row by email to
`REFINERY_ADMINS` (Django's mail) and as a JSON POST to
`REFINERY_NOTIFY_WEBHOOK`, recording each channel once it took the message. A
channel that fails is tried again at the next pass, up to `MAX_ATTEMPTS` times;
a channel that took the message is never sent it again.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import requests
from django.conf import settings
from django.core.mail import mail_admins
from django.db.models import Q
from django.utils import timezone

from common.models import Job
from common.secrets import redact
from foreman.claims import claim
from foreman.models import Notification

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
PAGE = 50
# Beyond the sends' own timeouts, before another Foreman may take a claimed notification.
CLAIM_MARGIN_S = 30


def describe(job: Job) -> tuple[str, str, dict]:
    """The subject, text and webhook payload that tell operators about `job`."""
    attempts = job.attempts
    why = (
        "it failed and said another attempt cannot help (no_retry)"
        if job.no_retry
        else f"it failed {len(attempts)} time(s) and has no retries left"
    )
    batches = [str(batch) for batch in job.batches.all()[:20]]  # a survey's: those it found
    subject = f"[refinery] gave up on {job.kind} job {job.pk}: {job.failure_reason[:120]}"
    lines = [
        f"The refinery gave up on {job.kind} job {job.pk}: {why}.",
        "",
        f"Last failure: {job.failure_reason}",
        f"Batches: {', '.join(batches) or '-'}",
        "Attempts:",
        *(
            f"  {n}. {job.kind} job {a.pk}: {a.state}, {a.ram_mb} MB"
            + (f": {a.failure_reason}" if a.failure_reason else "")
            for n, a in enumerate(attempts, start=1)
        ),
        "",
        f"See `manage.py jobs show {job.kind}:{job.pk}`; "
        f"`manage.py jobs retry {job.kind}:{job.pk}` tries once more.",
    ]
    payload = {
        "event": "job_given_up",
        "kind": job.kind,
        "job_id": job.pk,
        "attempts": [a.pk for a in attempts],
        "no_retry": job.no_retry,
        "failure_reason": job.failure_reason,
        "batches": batches,
        "ended_at": job.end_time.isoformat() if job.end_time else None,
    }
    return redact(subject), redact("\n".join(lines)), payload


def record(job: Job) -> Notification:
    """Queue the notification for `job` (call inside the transaction that gives up)."""
    subject, body, payload = describe(job)
    notification, _ = Notification.objects.get_or_create(
        job_kind=job.kind,
        job_id=job.pk,
        defaults={"subject": subject[:255], "body": body, "payload": payload},
    )
    return notification


def _send_email(notification: Notification) -> None:
    mail_admins(notification.subject, notification.body, fail_silently=False)


class WebhookError(Exception):
    pass


def _post_webhook(notification: Notification) -> None:
    """POST the payload to the webhook. A redirect is not followed (the payload would
    go wherever its Location says, a private host included): it is a failure, tried
    again at the next pass like any other."""
    response = requests.post(
        settings.REFINERY_NOTIFY_WEBHOOK,
        json=notification.payload,
        timeout=settings.REFINERY_NOTIFY_TIMEOUT_S,
        allow_redirects=False,
    )
    response.close()
    if 300 <= response.status_code < 400:
        raise WebhookError(
            f"the webhook answered HTTP {response.status_code} (redirects are not followed)"
        )
    response.raise_for_status()


def deliver(notification: Notification) -> bool:
    """Send what is still unsent of one notification; returns whether it is done."""
    errors = []
    channels = [
        ("email_sent_at", bool(settings.ADMINS), _send_email),
        ("webhook_sent_at", bool(settings.REFINERY_NOTIFY_WEBHOOK), _post_webhook),
    ]
    for field, wanted, send in channels:
        if not wanted or getattr(notification, field):
            continue
        try:
            send(notification)
        except Exception as error:  # any failure of a channel is retried later
            errors.append(f"{field.removesuffix('_sent_at')}: {type(error).__name__}: {error}")
            continue
        setattr(notification, field, timezone.now())
        notification.save(update_fields=[field])
    notification.attempts += 1
    notification.last_error = redact("; ".join(errors))
    if not errors:
        notification.delivered_at = timezone.now()
    notification.save(update_fields=["attempts", "last_error", "delivered_at"])
    if errors:
        logger.warning("notification %s not delivered yet: %s", notification.pk, errors)
    return not errors


def claim_pending() -> list[Notification]:
    """Undelivered notifications (oldest first, a page) that no other Foreman is
    sending, claimed for this one until its sends could have timed out (see
    `foreman.claims`)."""
    now = timezone.now()
    channels = 2  # email and webhook, each with its own timeout
    lease = timedelta(seconds=channels * settings.REFINERY_NOTIFY_TIMEOUT_S + CLAIM_MARGIN_S)
    pending = Notification.objects.filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
        delivered_at__isnull=True,
        attempts__lt=MAX_ATTEMPTS,
    ).order_by("created_at")
    ids = claim(pending, "claimed_until", now + lease, PAGE)
    return list(Notification.objects.filter(pk__in=ids).order_by("created_at"))


def deliver_pending() -> int:
    """Claim undelivered notifications, send them outside any transaction, and
    record each outcome as it comes; returns how many were delivered."""
    delivered = 0
    for notification in claim_pending():
        try:
            delivered += deliver(notification)
        finally:
            Notification.objects.filter(pk=notification.pk).update(claimed_until=None)
    return delivered
