"""A Nanopore run is `basecalled` once it is complete and every one of its batches
is processed: the rule in common/models/runs.py, applied by the jobs that
succeed (inside their own transitions), even when two finish at once."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from common.models import Batch, BatchStatus, ProcessorJob, RunState, SequencingRun


def nanopore_run(complete: bool, batches: int = 2) -> tuple[SequencingRun, list[ProcessorJob]]:
    run = SequencingRun.objects.create(
        platform="nanopore",
        run_id="cd613e30-d8f1-4adf-91b7-584a2265b1f5",
        location="/minknow/group/sample/20260105_0930_MN00001_FAX00001_cd613e30",
        metadata={"complete": True} if complete else {},
    )
    if complete:
        run.move_to(RunState.COMPLETE, "final_summary_FAX00001_cd613e30_7ed4d57b.txt appeared")
    jobs = []
    for number in range(1, batches + 1):
        batch = Batch.objects.create(
            source="nanopore_runs",
            accession=run.run_id,
            variant=str(number),
            pipeline_required="basecalling",
            sequencing_run=run,
        )
        job = ProcessorJob.objects.create(pipeline="basecalling")
        job.batches.add(batch)
        job.mark_queued("local")
        jobs.append(job)
    return run, jobs


def succeed(job: ProcessorJob) -> None:
    """What upload_processed_files does: the batch processed and the job succeeded,
    in one transaction."""
    with transaction.atomic():
        job.batches.update(status=BatchStatus.PROCESSED)
        assert job.mark_succeeded()


@pytest.mark.django_db
def test_the_run_is_basecalled_when_its_last_batch_is():
    run, (first, second) = nanopore_run(complete=True)
    for job in (first, second):
        assert job.mark_started("gpu-worker", "test")
    run.refresh_from_db()
    assert run.state == RunState.BASECALLING
    succeed(first)
    run.refresh_from_db()
    assert run.state == RunState.BASECALLING, "one batch is not basecalled yet"
    succeed(second)
    run.refresh_from_db()
    assert run.state == RunState.BASECALLED
    last = run.history.last()
    assert (last.old_state, last.job_kind, last.job_id) == ("basecalling", "processor", second.pk)
    assert last.reason == f"processor job {second.pk} (basecalling) succeeded"


@pytest.mark.django_db
def test_a_run_still_sequencing_is_not_basecalled_when_its_batches_are():
    run, (job,) = nanopore_run(complete=False, batches=1)
    assert job.mark_started("gpu-worker", "test")
    succeed(job)
    run.refresh_from_db()
    assert run.state == RunState.BASECALLING


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_last_batches_finishing_at_once_make_the_run_basecalled():
    """Each job's transaction has marked its batch processed before either moves
    the run: the lock on the run makes the second see the first's batch."""
    run, jobs = nanopore_run(complete=True)
    for job in jobs:
        assert job.mark_started("gpu-worker", "test")
    both_processed = threading.Barrier(2, timeout=30)
    errors: list[BaseException] = []

    def finish(job: ProcessorJob) -> None:
        try:
            with transaction.atomic():
                job.batches.update(status=BatchStatus.PROCESSED)
                both_processed.wait()  # neither has committed: each sees only its own
                assert job.mark_succeeded()
        except BaseException as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=finish, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    run.refresh_from_db()
    assert run.state == RunState.BASECALLED
