"""The Foreman with real processes on PostgreSQL: workers killed, the database
restarted, S3 stopped, jobs that hang or always fail, and paused kinds."""

from __future__ import annotations

import os
import select
import signal
from pathlib import Path

import boto3
import psycopg2
import pytest

from common.models import Batch, ComputedFile, JobState, ProcessorJob, Provenance
from common.storage import LocalStorage
from demo.services import S3_TEST_ENVIRONMENT, MotoServer, Postgres
from foreman.models import ForemanBeat, Notification
from foreman.passes import WORKER_LOST, Foreman
from runner.dispatch import send_job_now
from tests.foreman.helpers import job_process_of, operator_env, smoke_job, wait_for

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]

LEASE = {"REFINERY_HEARTBEAT_LEASE_S": "3"}
FAST_FOREMAN = ("foreman", "--interval", "0.3")
BUCKET = "refinery-outage"


def state_of(job: ProcessorJob) -> str:
    return ProcessorJob.objects.get(pk=job.pk).state


def process_gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def foreman_passes() -> int:
    """How many passes every Foreman has recorded in its heartbeat."""
    return sum(ForemanBeat.objects.values_list("passes", flat=True))


def first_line(process, timeout: float) -> str:
    """The first line a process printed, waited for at most `timeout` seconds."""
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, f"no output from pid {process.pid} in {timeout} s"
    return process.stdout.readline()


def latest_attempt(job: ProcessorJob) -> ProcessorJob:
    return ProcessorJob.objects.get(pk=job.pk).attempts[-1]


def test_a_killed_worker_is_found_lost_after_the_lease_and_its_job_retried_once(
    start_manage, manage, settings
):
    job = smoke_job("killed", sleep_s=3)
    batch = job.batches.get()
    assert send_job_now(job)
    worker = start_manage("worker", env=LEASE)
    wait_for(lambda: state_of(job) == JobState.RUNNING, 30, "start")
    child = wait_for(lambda: job_process_of(worker.pid), 30, "the job's process")
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(10)
    wait_for(lambda: process_gone(child), 10, "the job's process to die with its worker")
    assert state_of(job) == JobState.RUNNING  # nobody knows yet

    start_manage(*FAST_FOREMAN, env=LEASE)
    start_manage("worker", env=LEASE)
    wait_for(lambda: latest_attempt(job).state == JobState.SUCCEEDED, 40, "the retry to succeed")
    wait_for(lambda: "logs/processor/" in latest_attempt(job).log_location, 10, "its log")

    job.refresh_from_db()
    retry = job.retry
    assert job.state == JobState.FAILED and job.failure_reason == WORKER_LOST
    assert [a.pk for a in job.attempts] == [job.pk, retry.pk]
    results = ComputedFile.objects.filter(batches=batch)
    assert [r.processor_job_id for r in results] == [retry.pk]
    assert Provenance.objects.count() == 1
    # Nothing in storage that no row owns: the results and the retry's log.
    permanent = set(LocalStorage(settings.REFINERY_PERMANENT_STORAGE).list())
    assert permanent == {*results.values_list("key", flat=True),
                         f"logs/processor/processor-{retry.pk}.log"}  # fmt: skip
    assert not list(LocalStorage(settings.REFINERY_TEMP_STORAGE).list())
    shown = manage("jobs", "show", f"processor:{retry.pk}").stdout
    assert f"processor:{job.pk}" in shown and WORKER_LOST in shown


def test_every_job_succeeds_once_when_postgresql_restarts_under_running_workers(
    start_manage, manage, tmp_path
):
    postgres = Postgres().start()
    try:
        env = {**LEASE, "DATABASE_URL": postgres.url}
        manage("migrate", "--verbosity", "0", env=env)
        manage("shell", "-c", (
            "from common.models import Batch, ProcessorJob\n"
            "from runner.dispatch import send_job_now\n"
            "for i in range(12):\n"
            "    b = Batch.objects.create(source='local_files', accession=f'pg-{i}',\n"
            "        pipeline_required='smoke_test', metadata={'sleep_s': 1.5})\n"
            "    j = ProcessorJob.objects.create(pipeline='smoke_test')\n"
            "    j.batches.add(b)\n"
            "    assert send_job_now(j)\n"
        ), env=env)  # fmt: skip
        for _ in range(2):
            start_manage("worker", "--concurrency", "3", env=env)
        foreman = start_manage(*FAST_FOREMAN, env=env)

        def query(sql: str) -> list[tuple]:
            with psycopg2.connect(postgres.url) as db, db.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetchall()

        running = "SELECT count(*) FROM common_processorjob WHERE state = 'running'"
        wait_for(lambda: query(running)[0][0] >= 3, 30, "jobs to run")
        postgres.pg_ctl("restart")

        def all_done() -> bool:
            try:
                return not query(
                    "SELECT 1 FROM common_processorjob WHERE state IN ('created', 'queued', "
                    "'running') OR (state = 'failed' AND NOT retried AND given_up_at IS NULL)"
                )
            except psycopg2.OperationalError:
                return False

        wait_for(all_done, 90, "every job to end", every=0.5)
        succeeded_per_batch = query(
            "SELECT b.accession, count(j.id) FILTER (WHERE j.state = 'succeeded'), "
            "count(j.id) FILTER (WHERE j.given_up_at IS NOT NULL) "
            "FROM common_batch b JOIN common_processorjob_batches jb ON jb.batch_id = b.id "
            "JOIN common_processorjob j ON j.id = jb.processorjob_id GROUP BY b.accession"
        )
        assert sorted(succeeded_per_batch) == sorted((f"pg-{i}", 1, 0) for i in range(12))
        results_per_batch = query(
            "SELECT batch_id, count(*) FROM common_computedfile_batches GROUP BY batch_id"
        )
        assert len(results_per_batch) == 12 and {n for _, n in results_per_batch} == {1}
        assert foreman.poll() is None  # the Foreman rode out the restart
    finally:
        postgres.stop()


@pytest.fixture
def private_s3(settings, refinery_dirs):
    """A moto server of this test's own, which the test may stop and start again,
    with an S3 client for it and the environment that points a process at it."""
    server = MotoServer().start()
    env = {**S3_TEST_ENVIRONMENT, "AWS_ENDPOINT_URL": server.url}
    client = boto3.client(
        "s3",
        endpoint_url=server.url,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )
    client.create_bucket(Bucket=BUCKET)
    settings.REFINERY_TEMP_STORAGE = f"s3://{BUCKET}/temp"
    settings.REFINERY_PERMANENT_STORAGE = f"s3://{BUCKET}/permanent"
    yield server, client, env
    server.stop()


def test_an_upload_to_a_stopped_s3_fails_clearly_and_the_retry_succeeds_once_it_is_back(
    start_manage, private_s3
):
    server, client, env = private_s3
    job = smoke_job("s3-outage", result_mb=100)  # 20 parts of 5 MiB
    assert send_job_now(job)
    worker = start_manage("worker", env={**env, **LEASE, "REFINERY_S3_PART_SIZE": "5242880"})
    # Stop S3 while the result is being uploaded: once its multipart upload has begun.
    wait_for(lambda: client.list_multipart_uploads(Bucket=BUCKET).get("Uploads"), 60, "the upload")
    server.stop()
    wait_for(lambda: state_of(job) == JobState.FAILED, 60, "the upload to fail")
    job.refresh_from_db()
    assert job.failure_reason.startswith(
        f"step upload_processed_files failed: StorageError: S3 upload of s3://{BUCKET}/permanent/"
    )
    assert "connect" in job.failure_reason.lower()
    assert not ComputedFile.objects.exists() and not Provenance.objects.exists()

    server.start()  # an empty server again, on the same address
    client.create_bucket(Bucket=BUCKET)
    Foreman(outbox_grace_s=0).run_pass()  # the same work again
    wait_for(lambda: latest_attempt(job).state == JobState.SUCCEEDED, 60, "the retry")
    assert worker.poll() is None  # the worker survived the outage

    retry = latest_attempt(job)
    results = list(ComputedFile.objects.all())
    assert {r.processor_job_id for r in results} == {retry.pk} and len(results) == 2
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert {k for k in keys if k.startswith("permanent/processor/")} == {
        f"permanent/{r.key}" for r in results
    }
    for result in results:
        head = client.head_object(Bucket=BUCKET, Key=f"permanent/{result.key}")
        assert head["ContentLength"] == result.size
    assert max(r.size for r in results) == 100 * 1024 * 1024


@pytest.mark.parametrize("enforcer", ["worker", "foreman"])
def test_a_job_that_hangs_past_its_limit_is_stopped_and_retried(enforcer, start_manage, settings):
    """The worker kills a job at its kind's limit; the Foreman stops one whose
    worker did not (a lease later), through the dispatcher. Either way the job
    fails with the limit as its reason and the retry runs."""
    settings.REFINERY_HEARTBEAT_LEASE_S = 3
    settings.REFINERY_RUNTIME_LIMITS_S = {**settings.REFINERY_RUNTIME_LIMITS_S, "processor": 2}
    worker_limit = "2" if enforcer == "worker" else "3600"
    job = smoke_job("hangs", sleep_s=600)
    assert send_job_now(job)
    worker = start_manage(
        "worker", env={**LEASE, "REFINERY_PROCESSOR_RUNTIME_LIMIT_S": worker_limit}
    )
    wait_for(lambda: state_of(job) == JobState.RUNNING, 30, "start")
    child = wait_for(lambda: job_process_of(worker.pid), 30, "the job's process")
    # Once the job has its work directory it has read its batch: its retry will not hang.
    work_dir = Path(settings.REFINERY_WORK_DIR) / f"processor_job_{job.pk}"
    wait_for(work_dir.exists, 30, "the job to read its batch")
    Batch.objects.filter(pk=job.batches.get().pk).update(metadata={})
    the_foreman = Foreman(outbox_grace_s=0)

    def failed_and_retried() -> bool:
        the_foreman.run_pass()
        return ProcessorJob.objects.get(pk=job.pk).retried

    wait_for(failed_and_retried, 30, "the job to be stopped and retried", every=0.3)
    wait_for(lambda: process_gone(child), 10, "the hung process to be killed")
    job.refresh_from_db()
    assert job.failure_reason == "exceeded runtime limit (2 s)"
    wait_for(lambda: latest_attempt(job).state == JobState.SUCCEEDED, 30, "the retry")


def test_a_job_that_always_fails_ends_after_three_attempts_with_one_notification(
    start_manage, smtp_server, webhook_server
):
    job = smoke_job("always-fails", fail="the tool crashed")
    assert send_job_now(job)
    env = {**LEASE, **operator_env(smtp_server, webhook_server)}
    start_manage("worker", env=env)
    start_manage(*FAST_FOREMAN, env=env)
    wait_for(lambda: smtp_server.messages and webhook_server.posts, 60, "the notification")
    attempts = ProcessorJob.objects.get(pk=job.pk).attempts
    assert len(attempts) == 3
    assert all(a.state == JobState.FAILED and a.failure_reason == "the tool crashed"
               for a in attempts)  # fmt: skip
    last = attempts[-1]
    wait_for(lambda: Notification.objects.filter(delivered_at__isnull=False).exists(), 10, "record")
    passes = foreman_passes()
    wait_for(lambda: foreman_passes() >= passes + 2, 30, "two more Foreman passes")
    assert ProcessorJob.objects.count() == 3
    assert len(smtp_server.messages) == 1 and len(webhook_server.posts) == 1
    assert f"processor job {last.pk}" in smtp_server.messages[0][2]["Subject"]
    assert webhook_server.posts[0]["job_id"] == last.pk


def test_a_paused_kind_dispatches_nothing_until_resumed(start_manage, manage):
    manage("jobs", "pause", "processor")
    jobs = [smoke_job(f"paused-{i}") for i in range(3)]
    assert not any(send_job_now(j) for j in jobs)
    worker = start_manage("worker", env=LEASE)
    start_manage(*FAST_FOREMAN, env=LEASE)
    assert "up to 1 job(s) of processor" in first_line(worker, 60), "the worker to be polling"
    wait_for(lambda: foreman_passes() >= 2, 30, "two Foreman passes")
    assert set(ProcessorJob.objects.values_list("state", flat=True)) == {JobState.CREATED}
    manage("jobs", "resume", "processor")
    wait_for(lambda: set(ProcessorJob.objects.values_list("state", flat=True))
             == {JobState.SUCCEEDED}, 30, "every job to run")  # fmt: skip
    assert ProcessorJob.objects.count() == 3
