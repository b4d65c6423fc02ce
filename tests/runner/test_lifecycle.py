"""One job lifecycle: the runtime reads the job row once per attempt, and every
kind of job's work is found through the registry its app filled."""

import re
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from common.models import Batch, DownloaderJob, JobState, ProcessorJob, SurveyJob
from runner.dispatch.local import claim_next_job
from runner.lifecycle import execute_job
from runner.registry import NotRegistered, work_for
from runner.supervisor import Supervisor


def trivial_job() -> ProcessorJob:
    batch = Batch.objects.create(
        source="local_files", accession="t", pipeline_required="smoke_test"
    )
    job = ProcessorJob.objects.create(pipeline="smoke_test")
    job.batches.add(batch)
    return job


def reads_of_the_job_row(queries: list[dict], job: ProcessorJob) -> list[str]:
    """Statements that read the job's own row (a SELECT from its table, or an
    UPDATE … RETURNING), not its batches through the join table."""
    table = re.escape(ProcessorJob._meta.db_table)
    selects = re.compile(rf'^\s*SELECT .* FROM "{table}"(\s|$)', re.S | re.I)
    returns = re.compile(rf'^\s*UPDATE "{table}" .* RETURNING ', re.S | re.I)
    reads = [q["sql"] for q in queries if selects.search(q["sql"]) or returns.search(q["sql"])]
    return reads


@pytest.mark.django_db
def test_running_a_job_reads_no_job_row(refinery_dirs):
    """The work gets the runtime's job object: neither the lifecycle, nor the
    pipeline, nor its steps load the row again."""
    job = trivial_job()
    assert job.mark_started("test", "1")
    with CaptureQueriesContext(connection) as captured:
        assert execute_job(job)
    assert reads_of_the_job_row(captured.captured_queries, job) == []
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED


@pytest.mark.django_db(transaction=True)
def test_a_worker_reads_the_job_row_once_per_attempt(refinery_dirs):
    """The worker's side of an attempt (claim, run in a child, store the log,
    learn the outcome): one read of the row, the claim. The child's side is the
    test above: it runs on the object the claim returned."""
    job = trivial_job()
    job.mark_queued("local")
    supervisor = Supervisor()
    with CaptureQueriesContext(connection) as captured:
        claimed = claim_next_job("test-worker", "1")
        assert claimed.pk == job.pk
        child = supervisor.launch(claimed)
        deadline = time.monotonic() + 60
        while supervisor.busy and time.monotonic() < deadline:
            supervisor.poll()
            time.sleep(0.05)
    assert child.succeeded
    assert len(reads_of_the_job_row(captured.captured_queries, job)) == 1
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED and job.log_location


@pytest.mark.django_db
def test_every_kind_of_work_comes_from_the_registry():
    assert work_for(SurveyJob(source="local_files")).__name__ == "<lambda>"
    assert work_for(DownloaderJob(downloader_task="files")).__name__ == "download_files"
    assert work_for(ProcessorJob(pipeline="file_summary")).__name__ == "summarise_files"
    with pytest.raises(NotRegistered, match="no pipeline 'nope' is registered"):
        work_for(ProcessorJob(pipeline="nope"))
