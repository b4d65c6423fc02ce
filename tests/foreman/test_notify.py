"""Notifications are sent outside any transaction: a webhook that never answers
holds up nobody else's writes."""

import threading
import time
from datetime import timedelta

import pytest

from common.models import ProcessorJob
from foreman import notify
from foreman.models import Notification
from tests.foreman.helpers import smoke_job

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_webhook_that_never_answers_blocks_no_other_write(operators, settings):
    """The attack: with a webhook that never answers, other processes' writes
    failed with "database is locked" (SQLite's one write lock was held while the
    Foreman sent), every pass."""
    _smtp, webhook = operators
    settings.REFINERY_NOTIFY_TIMEOUT_S = 3
    webhook.statuses.append("hang")
    job = smoke_job("given-up")
    job.mark_failed("boom", no_retry=True)
    notify.record(job)
    delivering = threading.Thread(target=notify.deliver_pending)
    delivering.start()
    try:
        assert webhook.hanging.wait(10), "the webhook was never called"
        started = time.monotonic()
        ProcessorJob.objects.create(pipeline="smoke_test")  # another writer, meanwhile
        waited = time.monotonic() - started
    finally:
        delivering.join(30)
    assert waited < 1.5, f"a write waited {waited:.1f} s for the Foreman's sends"
    notification = Notification.objects.get()
    assert notification.delivered_at is None and notification.attempts == 1
    assert "webhook" in notification.last_error and notification.email_sent_at is not None
    assert notification.claimed_until is None  # released for the next pass


def test_a_claimed_notification_is_not_sent_twice(operators):
    smtp, webhook = operators
    job = smoke_job("given-up")
    job.mark_failed("boom", no_retry=True)
    notify.record(job)
    [claimed] = notify.claim_pending()
    assert notify.claim_pending() == []  # another Foreman finds nothing to send
    assert notify.deliver(claimed)
    assert len(webhook.posts) == 1 and len(smtp.messages) == 1


def test_refinery_notify_timeout_s_bounds_a_webhook_call(operators, settings):
    _smtp, webhook = operators
    settings.REFINERY_NOTIFY_TIMEOUT_S = 1  # the default, 10 s, would outlast the bound below
    webhook.statuses.append("hang")
    job = smoke_job("given-up")
    job.mark_failed("boom", no_retry=True)
    notify.record(job)
    started = time.monotonic()
    notify.deliver_pending()
    took = time.monotonic() - started
    assert webhook.hanging.is_set(), "the webhook was never called"
    assert 1 <= took < 6, f"the webhook call took {took:.1f} s"
    notification = Notification.objects.get()
    assert notification.delivered_at is None and "timed out" in notification.last_error


def test_a_foreman_killed_after_claiming_leaves_the_notification_to_the_next_one(operators):
    """Killed between the claim and the send: the claim expires and another pass
    sends it (nothing is lost, nothing stays claimed for ever)."""
    _smtp, webhook = operators
    job = smoke_job("given-up")
    job.mark_failed("boom", no_retry=True)
    notify.record(job)
    [claimed] = notify.claim_pending()  # ... and the process dies here
    assert notify.claim_pending() == []
    Notification.objects.filter(pk=claimed.pk).update(
        claimed_until=claimed.claimed_until - timedelta(hours=1)  # the lease ran out
    )
    assert notify.deliver_pending() == 1
    assert len(webhook.posts) == 1 and Notification.objects.get().delivered_at is not None
