"""send_job: sent after commit; a dispatcher that fails leaves the job created."""

import pytest
from django.db import transaction

from common.models import JobState, ProcessorJob
from runner.dispatch import base, send_job, send_job_now
from runner.dispatch.base import DispatchError, DispatchStatus
from runner.dispatch.local import LocalDispatcher


class FlakyDispatcher(LocalDispatcher):
    """A test double for a remote dispatcher that refuses the first `failures`
    sends (the real Nomad dispatcher is tested against the Nomad stand-in)."""

    name = "flaky"

    def __init__(self, failures: int):
        self.failures, self.calls = failures, 0

    def send(self, job):
        self.calls += 1
        if self.calls <= self.failures:
            raise DispatchError("connection refused")
        return f"flaky-{job.pk}"


@pytest.fixture
def use_dispatcher(monkeypatch):
    def use(dispatcher):
        monkeypatch.setattr(base, "get_dispatcher", lambda: dispatcher)
        monkeypatch.setattr("runner.dispatch.outbox.get_dispatcher", lambda: dispatcher)
        return dispatcher

    return use


@pytest.mark.django_db(transaction=True)
def test_a_job_is_sent_only_after_its_transaction_commits(use_dispatcher):
    dispatcher = use_dispatcher(FlakyDispatcher(failures=0))
    with transaction.atomic():
        job = ProcessorJob.objects.create(pipeline="smoke_test")
        send_job(job)
        assert dispatcher.calls == 0
    assert dispatcher.calls == 1
    job.refresh_from_db()
    assert job.state == JobState.QUEUED and job.dispatch_id == f"flaky-{job.pk}"


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_job_is_never_sent(use_dispatcher):
    dispatcher = use_dispatcher(FlakyDispatcher(failures=0))
    with pytest.raises(RuntimeError), transaction.atomic():
        send_job(ProcessorJob.objects.create(pipeline="smoke_test"))
        raise RuntimeError("the surveyor failed")
    assert dispatcher.calls == 0 and not ProcessorJob.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_quick_retries_hide_a_brief_failure(use_dispatcher):
    dispatcher = use_dispatcher(FlakyDispatcher(failures=2))
    job = ProcessorJob.objects.create(pipeline="smoke_test")
    send_job(job)
    job.refresh_from_db()
    assert dispatcher.calls == 3 and job.state == JobState.QUEUED


@pytest.mark.django_db(transaction=True)
def test_a_dispatcher_that_keeps_failing_leaves_the_job_created_and_it_goes_later(
    use_dispatcher,
):
    dispatcher = use_dispatcher(FlakyDispatcher(failures=100))
    job = ProcessorJob.objects.create(pipeline="smoke_test")
    send_job(job)
    job.refresh_from_db()
    assert job.state == JobState.CREATED and job.dispatch_id == ""
    dispatcher.failures = 0  # the dispatcher recovers
    assert send_job_now(job)
    job.refresh_from_db()
    assert job.state == JobState.QUEUED


@pytest.mark.django_db
def test_the_local_dispatcher_reports_a_silent_worker_as_lost(settings):
    from django.utils import timezone

    settings.REFINERY_HEARTBEAT_LEASE_S = 60
    job = ProcessorJob.objects.create(pipeline="smoke_test")
    job.mark_started("w", "1")
    assert LocalDispatcher().status(job) == DispatchStatus.RUNNING
    ProcessorJob.objects.filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - timezone.timedelta(seconds=61)
    )
    job.refresh_from_db()
    assert LocalDispatcher().status(job) == DispatchStatus.LOST
