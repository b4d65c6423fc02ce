"""A sequencing run's state: one mover, a history, webhook deliveries, and jobs
that move it inside their own transitions."""

from __future__ import annotations

import pytest
from django.db import transaction

from common.models import (
    Batch,
    DownloaderJob,
    ProcessorJob,
    RunState,
    RunStateChange,
    SequencingRun,
    WebhookDelivery,
)

pytestmark = pytest.mark.django_db


def make_run(run_id: str = "230101_A01234_0042_AHXXXXXXX") -> SequencingRun:
    return SequencingRun.objects.create(
        platform="illumina", run_id=run_id, location=f"/runs/{run_id}"
    )


def run_batches(run: SequencingRun) -> tuple[Batch, Batch]:
    archive = Batch.objects.create(
        source="illumina_runs",
        accession=run.run_id,
        variant="archive",
        pipeline_required="illumina_run_archive",
        sequencing_run=run,
    )
    fastq = Batch.objects.create(
        source="illumina_runs",
        accession=run.run_id,
        variant="fastq",
        pipeline_required="bcl2fastq",
        sequencing_run=run,
    )
    return archive, fastq


def test_move_to_records_history_and_refuses_a_move_its_state_does_not_allow():
    run = make_run()
    assert run.move_to(RunState.COMPLETE, "CopyComplete.txt is 20 min old")
    assert not run.move_to(RunState.COMPLETE, "again"), "already complete"
    assert not run.move_to(RunState.DEMULTIPLEXED), "complete cannot skip to demultiplexed"
    run.refresh_from_db()
    assert run.state == RunState.COMPLETE
    history = list(run.history.values_list("old_state", "new_state", "reason"))
    assert history == [("sequencing", "complete", "CopyComplete.txt is 20 min old")]


def test_a_full_save_never_writes_back_a_stale_state():
    run = make_run()
    stale = SequencingRun.objects.get(pk=run.pk)
    run.move_to(RunState.COMPLETE)
    stale.flowcell = "AHXXXXXXX"
    stale.save()
    run.refresh_from_db()
    assert (run.state, run.flowcell) == ("complete", "AHXXXXXXX")


def test_each_change_queues_one_delivery_per_webhook(settings):
    settings.REFINERY_RUN_WEBHOOKS = ["http://127.0.0.1:9/a", "http://127.0.0.1:9/b"]
    run = make_run()
    run.move_to(RunState.COMPLETE)
    run.move_to(RunState.FAILED, "the instrument says RunStatus=Failed")
    urls = sorted(WebhookDelivery.objects.values_list("state_change__new_state", "url"))
    assert urls == [
        ("complete", "http://127.0.0.1:9/a"),
        ("complete", "http://127.0.0.1:9/b"),
        ("failed", "http://127.0.0.1:9/a"),
        ("failed", "http://127.0.0.1:9/b"),
    ]


def test_jobs_move_their_runs_through_archiving_to_demultiplexed():
    run = make_run()
    run.move_to(RunState.COMPLETE)
    archive, fastq = run_batches(run)
    downloader = DownloaderJob.objects.create(downloader_task="illumina_run")
    downloader.batches.set([archive, fastq])
    assert downloader.mark_started("w", "1")
    run.refresh_from_db()
    assert run.state == "archiving"
    change = run.history.last()
    assert (change.job_kind, change.job_id) == ("downloader", downloader.pk)

    archiver = ProcessorJob.objects.create(pipeline="illumina_run_archive")
    archiver.batches.set([archive])
    archiver.mark_started("w", "1")
    archiver.mark_succeeded()
    demux = ProcessorJob.objects.create(pipeline="bcl2fastq")
    demux.batches.set([fastq])
    demux.mark_started("w", "1")
    run.refresh_from_db()
    assert run.state == "demultiplexing"
    demux.mark_succeeded()
    run.refresh_from_db()
    assert list(run.history.values_list("new_state", flat=True)) == [
        "complete",
        "archiving",
        "archived",
        "demultiplexing",
        "demultiplexed",
    ]


def test_a_job_that_gives_up_fails_its_run_with_the_reason_and_a_retry_resumes_it():
    run = make_run()
    run.move_to(RunState.COMPLETE)
    archive, _ = run_batches(run)
    job = DownloaderJob.objects.create(downloader_task="illumina_run")
    job.batches.set([archive])
    job.mark_started("w", "1")
    job.mark_failed("RunInfo.xml vanished", no_retry=True)
    run.refresh_from_db()
    assert run.state == "archiving", "one failed attempt does not fail the run"
    assert job.give_up()
    run.refresh_from_db()
    assert run.state == "failed"
    assert "RunInfo.xml vanished" in run.state_reason and f"job {job.pk}" in run.state_reason
    retry = job.create_retry()
    retry.mark_started("w", "1")
    run.refresh_from_db()
    assert run.state == "archiving"


def test_a_job_transition_rolled_back_leaves_the_run_as_it_was():
    run = make_run()
    run.move_to(RunState.COMPLETE)
    archive, _ = run_batches(run)
    job = DownloaderJob.objects.create(downloader_task="illumina_run")
    job.batches.set([archive])
    with pytest.raises(RuntimeError), transaction.atomic():
        job.mark_started("w", "1")
        raise RuntimeError("killed between the job's change and its commit")
    run.refresh_from_db()
    assert run.state == "complete"
    assert not RunStateChange.objects.filter(new_state="archiving").exists()


def test_jobs_of_other_pipelines_do_not_look_for_runs(django_assert_num_queries):
    job = ProcessorJob.objects.create(pipeline="smoke_test")
    with django_assert_num_queries(1):
        job.mark_started("w", "1")


def test_a_worker_claiming_a_run_job_moves_the_run_in_the_claim():
    """The worker's claim is one UPDATE … RETURNING, not mark_started: it moves
    the run too."""
    run = make_run()
    run.move_to(RunState.COMPLETE)
    archive, _ = run_batches(run)
    job = DownloaderJob.objects.create(downloader_task="illumina_run")
    job.batches.set([archive])
    assert job.mark_queued()
    claimed = DownloaderJob.claim_next("worker-1", "1", "local-1")
    assert claimed.pk == job.pk
    run.refresh_from_db()
    assert run.state == "archiving"
    assert run.history.last().job_id == job.pk
