"""Job state transitions, and that nothing else writes `state`."""

import re
from pathlib import Path

import pytest

from common.models import DownloaderJob, JobState, ProcessorJob, SurveyJob
from common.models.jobs import IllegalStateWrite

PROJECT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_a_job_walks_created_queued_running_succeeded():
    job = ProcessorJob.objects.create(pipeline="smoke_test")
    assert job.state == JobState.CREATED
    assert job.mark_queued("dispatch-1")
    assert job.state == JobState.QUEUED and job.dispatch_id == "dispatch-1" and job.dispatched_at
    assert job.mark_started("host:1", "1.0")
    assert job.state == JobState.RUNNING and job.start_time and job.heartbeat_at
    assert job.mark_succeeded()
    assert job.state == JobState.SUCCEEDED and job.end_time >= job.start_time


@pytest.mark.django_db
def test_transitions_from_the_wrong_state_do_nothing():
    job = DownloaderJob.objects.create(downloader_task="files")
    assert not job.mark_succeeded()  # never started
    assert job.state == JobState.CREATED
    job.mark_queued()
    assert job.mark_started("a", "1")
    assert not job.mark_started("b", "1")  # a second worker loses the race
    assert job.worker_id == "a"
    job.mark_failed("boom")
    assert not job.mark_succeeded()
    assert job.state == JobState.FAILED and job.failure_reason == "boom"


@pytest.mark.django_db
def test_failure_reasons_are_redacted(monkeypatch):
    from common import secrets

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI-very-secret")
    secrets._known_secrets.cache_clear()
    job = SurveyJob.objects.create(source="local_files")
    job.mark_failed("S3 said no to wJalrXUtnFEMI-very-secret at postgres://u:pw12345@db/x")
    assert "very-secret" not in job.failure_reason
    assert "pw12345" not in job.failure_reason
    secrets._known_secrets.cache_clear()


@pytest.mark.django_db
def test_save_refuses_a_state_written_by_hand():
    job = SurveyJob.objects.create(source="local_files")
    job.state = JobState.SUCCEEDED
    with pytest.raises(IllegalStateWrite):
        job.save()
    with pytest.raises(IllegalStateWrite):
        SurveyJob(source="local_files", state=JobState.RUNNING).save()


@pytest.mark.django_db
def test_a_stale_instance_never_writes_back_an_old_state():
    job = ProcessorJob.objects.create(pipeline="smoke_test")
    stale = ProcessorJob.objects.get(pk=job.pk)
    job.mark_queued()
    stale.ram_mb = 2048
    stale.save()
    job.refresh_from_db()
    assert job.state == JobState.QUEUED and job.ram_mb == 2048


@pytest.mark.django_db
def test_retry_is_a_new_row_pointing_at_the_attempt_it_retries():
    job = ProcessorJob.objects.create(pipeline="smoke_test")
    job.mark_failed("first")
    retry = job.create_retry(ram_mb=4096)
    assert retry.retried_job == job and retry.num_retries == 1 and retry.ram_mb == 4096
    assert retry.state == JobState.CREATED
    job.refresh_from_db()
    assert job.retried and job.retry == retry and job.failure_reason == "first"
    assert job.create_retry() is None  # only one retry per attempt
    assert [a.pk for a in retry.attempts] == [job.pk, retry.pk]


@pytest.mark.django_db
def test_an_interrupted_attempt_does_not_spend_a_retry():
    job = ProcessorJob.objects.create(pipeline="smoke_test", num_retries=1)
    job.mark_started("w", "1")
    job.mark_interrupted("interrupted: worker received SIGTERM")
    assert job.interrupted and job.state == JobState.FAILED
    assert job.create_retry().num_retries == 1


def test_no_code_outside_the_job_model_writes_state():
    """Every state change goes through a transition method in common/models/jobs.py."""
    writes = re.compile(
        r"\.state\s*=(?!=)|\.update\([^)]*\bstate\s*=|\.(create|bulk_create|update_or_create)"
        r"\([^)]*\bstate\s*="
    )
    assert writes.search("job.state = 'failed'")  # the pattern does catch a write
    assert writes.search("Job.objects.filter(pk=1).update(state='failed')")
    offenders = []
    for path in PROJECT.rglob("*.py"):
        relative = path.relative_to(PROJECT).as_posix()
        if relative.startswith("demo/nomad_standin/"):
            continue  # the Nomad stand-in's task states are Nomad's, not the refinery's jobs
        if relative.startswith((".venv/", "tests/", "var/")) or "/migrations/" in relative:
            continue
        if relative == "common/models/jobs.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if writes.search(line):
                offenders.append(f"{relative}:{number}: {line.strip()}")
    assert offenders == []


@pytest.mark.django_db
def test_mark_finished_records_either_outcome():
    ok, bad = (ProcessorJob.objects.create(pipeline="smoke_test") for _ in range(2))
    for job in (ok, bad):
        job.mark_started("w", "1")
    assert ok.mark_finished(True) and ok.state == JobState.SUCCEEDED
    assert bad.mark_finished(False, "no input", no_retry=True)
    assert bad.state == JobState.FAILED and bad.no_retry and bad.failure_reason == "no input"
