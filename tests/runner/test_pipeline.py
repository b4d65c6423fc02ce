"""The job_context pipeline's semantics."""

import pytest

from common.models import Batch, ComputedFile, JobState, ProcessorJob
from processors.pipeline import add_computed_file, begin_processing, upload_processed_files
from runner.pipeline import JobError, run_pipeline
from runner.steps import prepare_job_dir, start_job


@pytest.fixture
def running_job(db, refinery_dirs):
    batch = Batch.objects.create(
        source="local_files", accession="a.txt", pipeline_required="smoke_test"
    )
    job = ProcessorJob.objects.create(pipeline="smoke_test")
    job.batches.add(batch)
    job.mark_started("test", "1")
    return job


def write_result(context):
    path = context["work_dir"] / "out.txt"
    path.write_text("result")
    add_computed_file(context, path, "txt")
    return context


def test_a_pipeline_that_succeeds_stores_results_with_provenance(running_job):
    context = run_pipeline(
        running_job,
        [start_job, begin_processing, prepare_job_dir, write_result, upload_processed_files],
    )
    running_job.refresh_from_db()
    assert running_job.state == JobState.SUCCEEDED
    [result] = ComputedFile.objects.filter(processor_job=running_job)
    assert result.provenance.processor_name == "smoke_test"
    assert not context["work_dir"].exists()  # end_job freed the job directory


def test_success_false_stops_the_pipeline(running_job):
    ran = []

    def give_up(context):
        context.update(success=False, failure_reason="the input is empty")
        return context

    def never(context):
        ran.append("never")
        return context

    run_pipeline(running_job, [start_job, begin_processing, prepare_job_dir, give_up, never])
    running_job.refresh_from_db()
    assert ran == []
    assert running_job.state == JobState.FAILED
    assert running_job.failure_reason == "the input is empty" and not running_job.no_retry


def test_processor_job_error_records_its_reason_and_no_retry(running_job):
    def refuse(context):
        raise JobError("the GTF has no genes", no_retry=True)

    run_pipeline(running_job, [start_job, begin_processing, prepare_job_dir, refuse])
    running_job.refresh_from_db()
    assert running_job.failure_reason == "the GTF has no genes" and running_job.no_retry


def test_any_other_exception_fails_the_job_naming_the_step(running_job):
    def decompress_genome(context):
        raise ValueError("not a gzip file")

    context = run_pipeline(
        running_job, [start_job, begin_processing, prepare_job_dir, decompress_genome]
    )
    running_job.refresh_from_db()
    assert running_job.state == JobState.FAILED
    assert "decompress_genome" in running_job.failure_reason
    assert "not a gzip file" in running_job.failure_reason
    assert not context["work_dir"].exists()


def test_results_of_a_job_finished_elsewhere_are_discarded(running_job, settings):
    from common.storage import permanent_storage

    def foreman_gives_up(context):
        ProcessorJob.objects.get(pk=running_job.pk).mark_failed("worker lost")
        return context

    run_pipeline(
        running_job,
        [start_job, begin_processing, prepare_job_dir, write_result, foreman_gives_up,
         upload_processed_files],
    )  # fmt: skip
    running_job.refresh_from_db()
    assert running_job.failure_reason == "worker lost"
    assert not ComputedFile.objects.exists()
    assert list(permanent_storage().list("processor/")) == []
