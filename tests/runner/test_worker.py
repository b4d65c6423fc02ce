"""Local workers: real `manage.py worker` processes against the test database."""

import signal
import time

import pytest

from common.models import Batch, ComputedFile, JobState, ProcessorJob, Provenance, SurveyJob
from runner.job_logs import read_log


def queue_smoke_jobs(n: int, **metadata) -> list[ProcessorJob]:
    batches = Batch.objects.bulk_create(
        Batch(source="local_files", accession=f"smoke-{i}", pipeline_required="smoke_test",
              metadata=metadata)
        for i in range(n)
    )  # fmt: skip
    jobs = []
    for batch in batches:
        job = ProcessorJob.objects.create(pipeline="smoke_test")
        job.batches.add(batch)
        job.mark_queued("local")
        jobs.append(job)
    return jobs


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.django_db(transaction=True)
def test_two_workers_run_each_of_500_jobs_exactly_once(start_manage):
    jobs = queue_smoke_jobs(500)
    workers = [start_manage("worker", "--until-idle", "--concurrency", "2") for _ in range(2)]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    states = set(ProcessorJob.objects.values_list("state", flat=True))
    assert states == {JobState.SUCCEEDED}
    assert Provenance.objects.count() == 500
    assert ComputedFile.objects.count() == 500
    assert ComputedFile.objects.values("processor_job").distinct().count() == 500
    # Both workers took work, and each claim is unique.
    assert len(set(ProcessorJob.objects.values_list("worker_id", flat=True))) == 2
    assert ProcessorJob.objects.values("dispatch_id").distinct().count() == 500
    ran = sum(int(out.split("ran ")[1].split(" ")[0]) for out in outputs)
    assert ran == 500
    sample = ProcessorJob.objects.get(pk=jobs[0].pk)
    assert read_log(sample).count(b"refinery: running") == 1


@pytest.mark.django_db(transaction=True)
def test_a_job_past_its_runtime_limit_is_killed_and_failed_with_its_log_kept(manage):
    [job] = queue_smoke_jobs(1, sleep_s=60)
    started = time.monotonic()
    manage("worker", "--until-idle", env={"REFINERY_PROCESSOR_RUNTIME_LIMIT_S": "1"}, timeout=60)
    assert time.monotonic() - started < 30
    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert job.failure_reason == "exceeded runtime limit (1 s)"
    assert not job.interrupted
    assert job.log_location.endswith(f"logs/processor/processor-{job.pk}.log")
    assert b"refinery: running" in read_log(job)


@pytest.mark.django_db(transaction=True)
def test_a_child_that_dies_without_an_outcome_is_failed_with_why(manage):
    [job] = queue_smoke_jobs(1, exit_code=3)
    manage("worker", "--until-idle", timeout=60)
    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert job.failure_reason == "worker process exited with code 3 without recording an outcome"


@pytest.mark.django_db(transaction=True)
def test_a_step_that_raises_names_the_step(manage):
    [job] = queue_smoke_jobs(1, **{"raise": "disk on fire"})
    manage("worker", "--until-idle", timeout=60)
    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert job.failure_reason == "step simulate_work failed: RuntimeError: disk on fire"


@pytest.mark.django_db(transaction=True)
def test_run_job_runs_one_job_in_the_foreground_once(manage):
    batch = Batch.objects.create(
        source="local_files", accession="fg", pipeline_required="smoke_test"
    )
    job = ProcessorJob.objects.create(pipeline="smoke_test")
    job.batches.add(batch)
    result = manage("run_job", "processor", job.pk, timeout=60)
    assert f"refinery: running processor job {job.pk}" in result.stdout
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED and job.log_location
    again = manage("run_job", "processor", job.pk, timeout=60)
    assert "already succeeded" in again.stdout
    assert Provenance.objects.filter(processor_job=job).count() == 1


@pytest.mark.django_db(transaction=True)
def test_run_job_explains_an_unknown_job(manage):
    result = manage("run_job", "processor", 999999, check=False)
    assert result.returncode == 1
    assert "there is no processor job 999999" in result.stderr
    assert "Traceback" not in result.stderr


def queue_survey(folder) -> SurveyJob:
    folder.mkdir(exist_ok=True)
    survey = SurveyJob.objects.create(source="local_files", parameters={"path": str(folder)})
    survey.mark_queued("local")
    return survey


@pytest.mark.django_db(transaction=True)
def test_a_worker_takes_processor_jobs_before_older_queued_jobs_of_other_kinds(manage, tmp_path):
    survey = queue_survey(tmp_path / "empty")
    [processor] = queue_smoke_jobs(1)
    manage("worker", "--until-idle", "--concurrency", "1", timeout=120)
    survey.refresh_from_db()
    processor.refresh_from_db()
    assert processor.state == JobState.SUCCEEDED and survey.end_time, survey.failure_reason
    assert survey.created_at < processor.created_at
    assert processor.end_time <= survey.start_time


@pytest.mark.django_db(transaction=True)
def test_worker_kind_takes_only_that_kind(manage, tmp_path):
    survey = queue_survey(tmp_path / "empty")
    [processor] = queue_smoke_jobs(1)
    result = manage("worker", "--until-idle", "--kind", "survey", timeout=120)
    assert "ran 1 job(s)" in result.stdout
    survey.refresh_from_db()
    processor.refresh_from_db()
    assert survey.end_time and survey.worker_id
    assert processor.state == JobState.QUEUED and not processor.worker_id


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("command", ["run_job", "worker"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_job_is_marked_interrupted_and_its_retry_spends_nothing(
    start_manage, command, signum
):
    [job] = queue_smoke_jobs(1, sleep_s=60)
    args = ("run_job", "processor", job.pk) if command == "run_job" else ("worker",)
    process = start_manage(*args, env={"REFINERY_KILL_GRACE_S": "2"})
    wait_for(lambda: ProcessorJob.objects.get(pk=job.pk).state == JobState.RUNNING, 30, "start")
    process.send_signal(signum)
    output = process.communicate(timeout=30)[0]
    assert command == "run_job" or process.returncode == 0, output
    job.refresh_from_db()
    assert job.state == JobState.FAILED and job.interrupted, output
    assert signal.Signals(signum).name in job.failure_reason
    assert job.create_retry().num_retries == 0
