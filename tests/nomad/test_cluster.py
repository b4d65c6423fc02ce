"""Cluster mode end to end: REFINERY_DISPATCHER=nomad against the stand-in, which
runs each dispatched child's `python manage.py run_job …` as a real process (as
raw_exec would), with PostgreSQL and S3 on a moto server.

The jobs are registered by `manage.py nomad register`, as an operator would: the
children run the production settings and get the database URL, Django's secret key
and the S3 credentials only through their jobs' Nomad Variables."""

from __future__ import annotations

import os
import time
from io import StringIO

import pytest
from django.core.management import call_command

from common.models import (
    Batch,
    BatchStatus,
    ComputedFile,
    DownloaderJob,
    JobState,
    ProcessorJob,
    Provenance,
    SurveyJob,
    TranscriptomeIndex,
)
from common.models.choices import JobKind
from common.storage import permanent_storage
from demo.nomad_standin import NomadStandin, fake_node
from runner.dispatch import send_job_now
from runner.nomad.worker_classes import all_parent_ids
from tests.conftest import PROJECT, current_database_url
from tests.ensembl_fixtures import FUNGI
from tests.nomad.conftest import BIG_NODE, run_on_this_machine, use_standin

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]

TASK_SECRET_KEY = "cluster-test-django-secret-key-0123456789"
CLIENT_ENV_DROPPED = ("REFINERY_", "DJANGO_", "DATABASE_", "NOMAD_", "AWS_", "ENSEMBL_")


def client_environment() -> dict[str, str]:
    """A Nomad client's own environment, which raw_exec tasks inherit: none of the
    refinery's settings, none of its secrets."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(CLIENT_ENV_DROPPED)}
    return {**env, "PYTHONPATH": str(PROJECT)}


def register_as_an_operator(standin: NomadStandin, monkeypatch, settings) -> None:
    """`manage.py nomad register` in the environment an operator would give it."""
    operator = {
        "DATABASE_URL": current_database_url(),
        "DJANGO_SECRET_KEY": TASK_SECRET_KEY,
        "REFINERY_TEMP_STORAGE": settings.REFINERY_TEMP_STORAGE,
        "REFINERY_PERMANENT_STORAGE": settings.REFINERY_PERMANENT_STORAGE,
        "AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL"],
        "AWS_DEFAULT_REGION": os.environ["AWS_DEFAULT_REGION"],
        "AWS_ACCESS_KEY_ID": os.environ["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": os.environ["AWS_SECRET_ACCESS_KEY"],
        "NOMAD_ADDR": standin.address,
    }
    for name, value in operator.items():
        monkeypatch.setenv(name, value)
    settings.REFINERY_NOMAD_TASK_ENV = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
    call_command("nomad", "register", stdout=StringIO(), stderr=StringIO())


@pytest.fixture
def cluster(settings, s3_storage, refinery_dirs, monkeypatch):
    """The stand-in running children on this machine, with every refinery job
    registered; the children share this test's database and S3 storage. Only where
    a task keeps its scratch files is this machine's business (env_overrides)."""
    with NomadStandin(
        nodes=[fake_node(**BIG_NODE)],
        command_rewriter=run_on_this_machine,
        time_scale=0.01,
        host_env=client_environment(),
    ) as standin:
        use_standin(settings, standin)
        standin.env_overrides.update(
            REFINERY_HOME=str(refinery_dirs),
            REFINERY_WORK_DIR=str(settings.REFINERY_WORK_DIR),
            REFINERY_WORKER_POLL_S="0.05",
        )
        register_as_an_operator(standin, monkeypatch, settings)
        yield standin
        assert standin.internal_errors == []


def wait_for(predicate, timeout: float, what: str, standin: NomadStandin | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    logs = child_logs(standin) if standin is not None else ""
    raise AssertionError(f"timed out after {timeout} s waiting for {what}{logs}")


def child_logs(standin: NomadStandin) -> str:
    """Every dispatched child's output, to show why a test timed out."""
    logs = []
    for parent in all_parent_ids():
        for child in standin.children(parent):
            out, err = standin.logs(child), standin.logs(child, stream="stderr")
            logs.append(f"\n--- {child}\n{out}{err}")
    return "".join(logs)


def all_finished() -> bool:
    models = (SurveyJob, DownloaderJob, ProcessorJob)
    return (
        all(not m.objects.unfinished().exists() for m in models) and ProcessorJob.objects.exists()
    )


def check_ran_on_nomad(cluster: NomadStandin, job) -> None:
    """The job ran as its dispatched child: the row names the child and its allocation."""
    assert job.state == JobState.SUCCEEDED, job.failure_reason
    child = cluster.wait_for_job(job.dispatch_id, "dead", timeout=30)
    assert child["Meta"]["JOB_ID"] == str(job.pk)
    assert child["Meta"]["JOB_KIND"] == job.kind
    [alloc] = cluster.allocations(job.dispatch_id)
    assert alloc["ClientStatus"] == "complete"
    assert job.worker_id == f"nomad:{alloc['ID']}"


def test_local_files_survey_to_results(cluster, manage, tmp_path, s3_storage):
    folder = tmp_path / "runs"
    folder.mkdir()
    for i in range(3):
        (folder / f"sample-{i}.txt").write_text(f"reads of sample {i}\n" * (i + 2))

    out = manage(
        "survey", "--queue", "local_files", folder,
        env={"REFINERY_DISPATCHER": "nomad", "NOMAD_ADDR": cluster.address},
    ).stdout  # fmt: skip
    assert "queued survey job" in out
    survey = SurveyJob.objects.get()
    assert survey.dispatch_id.startswith("REFINERY_SURVEY_1024/dispatch-survey-")

    wait_for(all_finished, 120, "the survey, downloads and processing", cluster)
    check_ran_on_nomad(cluster, SurveyJob.objects.get())
    downloaders = list(DownloaderJob.objects.all())
    processors = list(ProcessorJob.objects.all())
    assert len(downloaders) == 3 and len(processors) == 3
    for job in [*downloaders, *processors]:
        check_ran_on_nomad(cluster, job)
        assert job.dispatch_id.startswith(f"REFINERY_{job.kind.upper()}_1024/")
    assert set(Batch.objects.values_list("status", flat=True)) == {BatchStatus.PROCESSED}
    results = list(ComputedFile.objects.all())
    assert len(results) == 3
    storage = permanent_storage()
    for result in results:
        assert storage.exists(result.key)
    assert storage.bucket == s3_storage
    # Each child was dispatched once, by the process that created its job.
    dispatches = [r for r in cluster.requests if r["path"].endswith("/dispatch")]
    assert len(dispatches) == 7
    assert len({r["query"]["idempotency_token"] for r in dispatches}) == 7


def test_ensembl_survey_to_transcriptome_indices(cluster, manage, ensembl, settings):
    ensembl_env = {
        "ENSEMBL_REST_URL": settings.ENSEMBL_REST_URL,
        "ENSEMBL_FTP_URL": settings.ENSEMBL_FTP_URL,
        "ENSEMBL_GENOMES_FTP_URL": settings.ENSEMBL_GENOMES_FTP_URL,
    }
    cluster.env_overrides.update(ensembl_env)
    manage(
        "survey", "--queue", "ensembl", "--division", FUNGI, "--species", "refinery_demonstrans",
        env={**ensembl_env, "REFINERY_DISPATCHER": "nomad", "NOMAD_ADDR": cluster.address},
    )  # fmt: skip
    wait_for(all_finished, 180, "the survey, download and indexing", cluster)
    check_ran_on_nomad(cluster, SurveyJob.objects.get())
    [downloader] = DownloaderJob.objects.all()
    check_ran_on_nomad(cluster, downloader)
    assert downloader.dispatch_id.startswith("REFINERY_DOWNLOADER_1024/")
    processors = list(ProcessorJob.objects.order_by("pipeline"))
    assert [p.pipeline for p in processors] == [
        "transcriptome_index_long",
        "transcriptome_index_short",
    ]
    for job in processors:
        assert job.dispatch_id.startswith("REFINERY_PROCESSOR_")
        assert cluster.job(job.dispatch_id)["Meta"]["JOB_ID"] == str(job.pk)
    for job in processors:
        check_ran_on_nomad(cluster, job)
    indices = TranscriptomeIndex.objects.order_by("length")
    assert [(i.length, i.k, i.batch.pipeline_required) for i in indices] == [
        ("long", 31, "transcriptome_index_long"),
        ("short", 23, "transcriptome_index_short"),
    ]
    assert all(permanent_storage().exists(i.computed_file.key) for i in indices)


def heartbeat_older_than(job, seconds: float) -> bool:
    from django.utils import timezone

    beat = ProcessorJob.objects.get(pk=job.pk).heartbeat_at
    return beat is not None and (timezone.now() - beat).total_seconds() > seconds


def test_a_lost_allocations_replacement_leaves_the_started_job_alone_and_the_foreman_retries(
    cluster, settings
):
    from foreman.passes import WORKER_LOST, Foreman

    batch = Batch.objects.create(
        source="local_files", accession="slow", pipeline_required="smoke_test",
        metadata={"sleep_s": 3},
    )  # fmt: skip
    job = ProcessorJob.objects.create(pipeline="smoke_test")
    job.batches.add(batch)
    assert send_job_now(job)
    job.refresh_from_db()
    wait_for(lambda: ProcessorJob.objects.get(pk=job.pk).state == JobState.RUNNING, 30, "the start")
    # The node is lost: its process dies, and Nomad places a replacement allocation
    # (as it does even with reschedule attempts 0), whose run_job finds the job started.
    [lost] = cluster.lose_allocation(job.dispatch_id)

    def replacement_ended():
        allocations = cluster.allocations(job.dispatch_id)
        return (
            len(allocations) == 2 and allocations[1]["ClientStatus"] == "complete" and allocations
        )

    first, replacement = wait_for(replacement_ended, 60, "the replacement to end", cluster)
    assert (first["ID"], first["ClientStatus"]) == (lost, "lost")
    assert replacement["ID"] != lost
    output = cluster.logs(job.dispatch_id)
    assert f"processor job {job.pk} is already running; not running it again" in output
    assert "refinery: running" not in output
    job.refresh_from_db()
    assert (job.state, job.worker_id) == (JobState.RUNNING, f"nomad:{lost}")
    assert not ComputedFile.objects.filter(processor_job=job).exists()

    settings.REFINERY_HEARTBEAT_LEASE_S = 1
    wait_for(lambda: heartbeat_older_than(job, 1), 10, "the lease to pass")
    report = Foreman(outbox_grace_s=0).run_pass()
    assert report[f"{JobKind.PROCESSOR} worker lost"] == 1
    assert report[f"{JobKind.PROCESSOR} dispatched"] == 1
    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert job.failure_reason.startswith(
        f"{WORKER_LOST}: the allocation was lost with its node (allocation {lost[:8]}, "
    )
    retry = job.retry
    wait_for(
        lambda: ProcessorJob.objects.get(pk=retry.pk).state == JobState.SUCCEEDED,
        60,
        "the retry",
        cluster,
    )
    retry.refresh_from_db()
    check_ran_on_nomad(cluster, retry)
    assert retry.dispatch_id != job.dispatch_id
    assert ComputedFile.objects.filter(processor_job=retry).count() == 1
    assert not ComputedFile.objects.filter(processor_job=job).exists()


def smoke_job(**metadata) -> ProcessorJob:
    batch = Batch.objects.create(
        source="local_files", accession="smoke", pipeline_required="smoke_test", metadata=metadata
    )
    job = ProcessorJob.objects.create(pipeline="smoke_test")
    job.batches.add(batch)
    return job


def test_a_task_gets_its_secrets_only_through_its_template_and_runs_its_job(cluster):
    parent = cluster.job("REFINERY_PROCESSOR_1024")
    [task] = parent["TaskGroups"][0]["Tasks"]
    for name in ("DATABASE_URL", "DJANGO_SECRET_KEY", "AWS_SECRET_ACCESS_KEY", "NOMAD_TOKEN"):
        assert name not in task["Env"]
        assert name not in cluster.host_env and name not in cluster.env_overrides
    assert task["Env"]["DJANGO_SETTINGS_MODULE"] == "refinery.settings_production"

    job = smoke_job()
    assert send_job_now(job)
    wait_for(
        lambda: ProcessorJob.objects.get(pk=job.pk).state == JobState.SUCCEEDED,
        60,
        "the job",
        cluster,
    )
    job.refresh_from_db()
    check_ran_on_nomad(cluster, job)
    [alloc] = cluster.allocations(job.dispatch_id)
    rendered = cluster.allocation_file(alloc["ID"], "processor", "secrets/env.env")
    for name in ("DATABASE_URL", "DJANGO_SECRET_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert f"\n{name}=" in rendered
    assert ComputedFile.objects.filter(processor_job=job).count() == 1


def test_a_task_that_dies_before_its_job_starts_is_failed_with_its_exit_code_and_stderr(
    cluster, settings
):
    from foreman.passes import Foreman

    # As when register ran without the key: the production settings refuse to load.
    cluster.env_overrides["DJANGO_SECRET_KEY"] = None
    job = smoke_job()
    assert send_job_now(job)
    job.refresh_from_db()
    cluster.wait_for_job(job.dispatch_id, "dead", timeout=60)
    settings.REFINERY_HEARTBEAT_LEASE_S = 1
    time.sleep(1.2)
    report = Foreman(outbox_grace_s=0).run_pass()
    assert report[f"{JobKind.PROCESSOR} lost"] == 1
    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert job.start_time is None
    assert job.exit_code == 1
    reason = job.failure_reason
    assert reason.startswith("the Nomad task ended before the job started: exit code 1")
    assert "ImproperlyConfigured: DJANGO_SECRET_KEY must be set in production" in reason
    assert TASK_SECRET_KEY not in reason
    assert job.retry is not None  # the Foreman retries it, as any failure


def test_a_second_child_of_one_dispatch_never_runs_the_job_twice(cluster):
    """hashicorp/nomad#26690: a Nomad that checks the idempotency token outside its
    state lock may create a child per concurrent dispatch of one attempt."""
    from concurrent.futures import ThreadPoolExecutor

    from runner.nomad.dispatcher import NomadDispatcher

    cluster.racy_idempotency = True
    job = smoke_job(sleep_s=1)
    with ThreadPoolExecutor(2) as pool:
        children = list(pool.map(lambda _: NomadDispatcher().send(job), range(2)))
    assert len(set(children)) == 2, "the stand-in did not reproduce the race"
    for child in children:
        cluster.wait_for_job(child, "dead", timeout=60)
    outputs = [cluster.logs(child) for child in children]
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED, outputs
    assert sum("refinery: running" in out for out in outputs) == 1, outputs
    assert sum(f"processor job {job.pk} is already" in out for out in outputs) == 1, outputs
    assert ComputedFile.objects.filter(processor_job=job).count() == 1
    assert Provenance.objects.filter(processor_job=job).count() == 1
