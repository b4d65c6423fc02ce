"""One Foreman pass at a time, in this process: retries, giving up, hung and lost
jobs, runtime limits, caps and pauses."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from common.models import DownloaderJob, JobState, PausedKind, ProcessorJob
from foreman import actions
from foreman.models import Notification
from foreman.passes import LOST_REASON, WORKER_LOST, Foreman
from runner.dispatch import DispatchStatus, send_job_now
from runner.dispatch.local import LocalDispatcher
from tests.foreman.helpers import smoke_job

pytestmark = pytest.mark.django_db


class FakeDispatcher(LocalDispatcher):
    """The local dispatcher, except for the statuses a test sets, and it records
    what it was asked to stop."""

    name = "fake"

    def __init__(self, statuses: dict[int, DispatchStatus] | None = None):
        self.statuses = statuses or {}
        self.stopped: list[int] = []

    def status(self, job):
        return self.statuses.get(job.pk) or super().status(job)

    def stop(self, job):
        self.stopped.append(job.pk)


def foreman(dispatcher=None, **kwargs) -> Foreman:
    return Foreman(dispatcher=dispatcher or FakeDispatcher(), outbox_grace_s=0, **kwargs)


def fail(job, reason="boom", **kwargs):
    if job.state == JobState.CREATED:
        job.mark_queued("local")
    job.mark_started("test-worker", "test")
    assert job.mark_failed(reason, **kwargs)
    return job


def ago(**delta):
    return timezone.now() - timedelta(**delta)


def test_a_failed_job_gets_a_new_attempt_with_the_same_batches_and_is_dispatched():
    job = fail(smoke_job())
    report = foreman().run_pass()
    job.refresh_from_db()
    assert job.retried and job.given_up_at is None
    retry = job.retry
    assert retry.state == JobState.QUEUED
    assert retry.num_retries == 1 and retry.retried_job_id == job.pk
    assert list(retry.batches.all()) == list(job.batches.all())
    assert report == {"processor retried": 1, "processor dispatched": 1}


def test_a_job_failing_every_time_ends_after_three_attempts_with_one_notification(operators):
    smtp, webhook = operators
    job = smoke_job("always-fails")
    the_foreman = foreman()
    for _ in range(3):
        fail(job, "boom: the tool crashed")
        the_foreman.run_pass()
        job = ProcessorJob.objects.order_by("-id").first()
    attempts = job.attempts
    assert len(attempts) == 3 and [a.num_retries for a in attempts] == [0, 1, 2]
    last = attempts[-1]
    assert last.state == JobState.FAILED and last.given_up_at is not None and not last.retried
    for _ in range(3):  # later passes neither retry nor tell anyone again
        assert the_foreman.run_pass() == {}
    assert ProcessorJob.objects.count() == 3
    assert len(smtp.messages) == 1 and len(webhook.posts) == 1
    _, recipients, message = smtp.messages[0]
    assert recipients == ["ops@example.org"]
    assert f"processor job {last.pk}" in message["Subject"]
    assert "boom: the tool crashed" in message.get_payload()
    assert webhook.posts[0]["job_id"] == last.pk
    assert webhook.posts[0]["attempts"] == [a.pk for a in attempts]
    assert Notification.objects.get().delivered_at is not None


@pytest.mark.parametrize("retries", [0, 4])
def test_refinery_max_retries_sets_how_many_attempts_a_job_gets(settings, retries):
    settings.REFINERY_MAX_RETRIES = retries
    job = smoke_job("always-fails")
    the_foreman = foreman()
    for _ in range(retries + 1):
        fail(job, "boom")
        the_foreman.run_pass()
        job = ProcessorJob.objects.order_by("-id").first()
    attempts = job.attempts
    assert [a.num_retries for a in attempts] == list(range(retries + 1))
    assert attempts[-1].given_up_at is not None and not attempts[-1].retried
    assert the_foreman.run_pass() == {} and ProcessorJob.objects.count() == retries + 1


def test_a_no_retry_failure_is_given_up_at_once(operators):
    smtp, webhook = operators
    job = fail(smoke_job(), "the input is not a FASTA file", no_retry=True)
    assert foreman().run_pass() == {"processor given up": 1, "notifications delivered": 1}
    job.refresh_from_db()
    assert not job.retried and job.given_up_at
    assert len(smtp.messages) == 1 and len(webhook.posts) == 1
    assert webhook.posts[0]["no_retry"] is True


def test_a_channel_that_fails_is_tried_again_and_the_other_is_not_sent_twice(operators):
    smtp, webhook = operators
    webhook.statuses = [500]
    fail(smoke_job(), no_retry=True)
    the_foreman = foreman()
    the_foreman.run_pass()
    notification = Notification.objects.get()
    assert notification.delivered_at is None and "500" in notification.last_error
    the_foreman.run_pass()
    notification.refresh_from_db()
    assert notification.delivered_at is not None and notification.attempts == 2
    assert len(smtp.messages) == 1 and len(webhook.posts) == 2


def test_an_interrupted_attempt_does_not_spend_a_retry():
    job = smoke_job(state="running")
    ProcessorJob.objects.filter(pk=job.pk).update(num_retries=2)
    job.refresh_from_db()
    job.mark_interrupted("interrupted: worker received SIGTERM")
    foreman().run_pass()
    job.refresh_from_db()
    assert job.retried and job.retry.num_retries == 2


def test_a_running_job_whose_worker_stopped_beating_is_failed_as_worker_lost(settings):
    settings.REFINERY_HEARTBEAT_LEASE_S = 30
    alive = smoke_job("alive", state="running")
    hung = smoke_job("hung", state="running")
    ProcessorJob.objects.filter(pk=hung.pk).update(heartbeat_at=ago(seconds=31))
    dispatcher = FakeDispatcher()
    # Not while the Foreman itself has not been connected for a whole lease.
    assert foreman(dispatcher).run_pass(judge_heartbeats=False) == {}
    report = foreman(dispatcher).run_pass()
    hung.refresh_from_db()
    alive.refresh_from_db()
    assert hung.state == JobState.FAILED and hung.failure_reason == WORKER_LOST
    assert hung.retry.state == JobState.QUEUED
    assert alive.state == JobState.RUNNING
    assert dispatcher.stopped == [hung.pk]
    assert report["processor worker lost"] == 1


def test_a_stale_heartbeat_is_not_hung_while_the_dispatcher_says_the_work_runs(settings):
    settings.REFINERY_HEARTBEAT_LEASE_S = 30
    job = smoke_job(state="running")
    ProcessorJob.objects.filter(pk=job.pk).update(heartbeat_at=ago(minutes=5))
    foreman(FakeDispatcher({job.pk: DispatchStatus.RUNNING})).run_pass()
    job.refresh_from_db()
    assert job.state == JobState.RUNNING


def test_a_queued_job_the_dispatcher_lost_is_dispatched_again_as_a_new_attempt(settings):
    settings.REFINERY_HEARTBEAT_LEASE_S = 30
    lost = smoke_job("lost", state="queued")
    fresh = smoke_job("fresh", state="queued")
    ProcessorJob.objects.filter(pk=lost.pk).update(dispatched_at=ago(minutes=2))
    dispatcher = FakeDispatcher({lost.pk: DispatchStatus.GONE, fresh.pk: DispatchStatus.GONE})
    foreman(dispatcher).run_pass()
    lost.refresh_from_db()
    fresh.refresh_from_db()
    assert lost.state == JobState.FAILED and lost.failure_reason == LOST_REASON
    assert lost.start_time is None and lost.retry.state == JobState.QUEUED
    assert fresh.state == JobState.QUEUED  # dispatched within the lease: not judged yet


def test_the_foreman_stops_a_job_past_its_runtime_limit(settings):
    settings.REFINERY_HEARTBEAT_LEASE_S = 10
    settings.REFINERY_RUNTIME_LIMITS_S = {**settings.REFINERY_RUNTIME_LIMITS_S, "processor": 60}
    job = smoke_job(state="running")
    ProcessorJob.objects.filter(pk=job.pk).update(start_time=ago(seconds=71))
    dispatcher = FakeDispatcher()
    foreman(dispatcher).run_pass()
    job.refresh_from_db()
    assert job.failure_reason == "exceeded runtime limit (60 s)"
    assert dispatcher.stopped == [job.pk] and job.retried


def test_created_jobs_are_dispatched_within_the_caps(settings):
    settings.REFINERY_MAX_QUEUED_BY_KIND = {"survey": 10, "downloader": 2, "processor": 3}
    settings.REFINERY_MAX_QUEUED_JOBS = 4
    processors = [smoke_job(f"p{i}") for i in range(6)]
    downloaders = [DownloaderJob.objects.create(downloader_task="files") for _ in range(3)]
    the_foreman = foreman()
    assert the_foreman.run_pass() == {"processor dispatched": 3, "downloader dispatched": 1}
    assert the_foreman.run_pass() == {}
    queued = ProcessorJob.objects.filter(state=JobState.QUEUED)
    assert sorted(queued.values_list("pk", flat=True)) == [p.pk for p in processors[:3]]
    for job in queued[:2]:
        assert job.mark_started("w", "v") and job.mark_succeeded()
    assert the_foreman.run_pass() == {"processor dispatched": 2}
    assert DownloaderJob.objects.filter(state=JobState.CREATED).count() == 2
    assert len(downloaders) == 3


def test_send_job_now_holds_back_a_job_over_its_cap_or_of_a_paused_kind(settings):
    settings.REFINERY_MAX_QUEUED_BY_KIND = {"survey": 1, "downloader": 1, "processor": 1}
    first, second = smoke_job("a"), smoke_job("b")
    assert send_job_now(first) and not send_job_now(second)
    assert second.state == JobState.CREATED
    actions.pause("downloader")
    downloader = DownloaderJob.objects.create(downloader_task="files")
    assert not send_job_now(downloader) and downloader.state == JobState.CREATED


def test_a_paused_kind_dispatches_nothing_until_resumed():
    assert actions.pause("processor", "archive maintenance")
    assert not actions.pause("processor")
    waiting = smoke_job("waiting")
    failed = fail(smoke_job("failed"))
    the_foreman = foreman()
    assert not send_job_now(waiting)
    assert the_foreman.run_pass() == {"processor retried": 1}
    assert not ProcessorJob.objects.filter(state=JobState.QUEUED).exists()
    assert actions.resume("processor") and not PausedKind.objects.exists()
    assert the_foreman.run_pass() == {"processor dispatched": 2}
    failed.refresh_from_db()
    assert failed.retry.state == JobState.QUEUED


def test_processors_are_dispatched_before_downloaders(settings):
    settings.REFINERY_MAX_QUEUED_JOBS = 1
    downloader = DownloaderJob.objects.create(downloader_task="files")
    processor = smoke_job()
    foreman().run_pass()
    downloader.refresh_from_db()
    processor.refresh_from_db()
    assert (processor.state, downloader.state) == (JobState.QUEUED, JobState.CREATED)


def test_young_created_jobs_are_left_to_the_outbox():
    job = smoke_job()
    Foreman(dispatcher=FakeDispatcher(), outbox_grace_s=60).run_pass()
    job.refresh_from_db()
    assert job.state == JobState.CREATED


def test_every_job_is_handled_when_there_are_more_than_a_page():
    jobs = [fail(smoke_job(f"j{i}")) for i in range(7)]
    report = foreman(page_size=2).run_pass()
    assert report == {"processor retried": 7, "processor dispatched": 7}
    assert all(ProcessorJob.objects.get(pk=j.pk).retried for j in jobs)
