"""Basecalling on a Nomad cluster whose GPU servers are outside it: jobs kept for
engines (REFINERY_ENGINE_PIPELINES) wait in the database, the Foreman neither
loses nor fails them, and engines never take a job that was sent to Nomad.
Nomad is the stand-in that follows ../shared/reference/nomad-api.md."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from common.models import JobState, ProcessorJob
from foreman.passes import Foreman
from runner.dispatch import send_job_now
from runner.engines import ENGINE_QUEUE, claim_for_engine
from runner.registry import queued_waits

pytestmark = pytest.mark.django_db


def basecalling_job() -> ProcessorJob:
    return ProcessorJob.objects.create(pipeline="basecalling", ram_mb=8192)


def test_without_the_setting_basecalling_goes_to_the_gpu_tier_and_engines_leave_it(registered):
    job = basecalling_job()
    assert send_job_now(job)
    job.refresh_from_db()
    assert job.dispatch_id.startswith("REFINERY_PROCESSOR_GPU_8192/")
    assert claim_for_engine("gpu004", "1.0") is None  # Nomad has it: no second runner
    assert ProcessorJob.objects.get(pk=job.pk).state == JobState.QUEUED


def test_a_job_kept_for_engines_is_not_sent_to_nomad_and_an_engine_takes_it(registered, settings):
    settings.REFINERY_ENGINE_PIPELINES = ["basecalling"]
    job = basecalling_job()
    other = ProcessorJob.objects.create(pipeline="smoke_test", ram_mb=4096)
    assert send_job_now(job) and send_job_now(other)
    job.refresh_from_db()
    other.refresh_from_db()
    assert job.state == JobState.QUEUED and job.dispatch_id == ENGINE_QUEUE
    assert other.dispatch_id.startswith("REFINERY_PROCESSOR_4096/")  # the rest still go
    assert registered.children("REFINERY_PROCESSOR_GPU_8192") == []
    [line] = queued_waits()
    assert line.startswith("1 queued basecalling job(s) wait for")
    assert "1 kept for engines by REFINERY_ENGINE_PIPELINES" in line

    claimed = claim_for_engine("gpu004", "1.0")
    assert claimed is not None and claimed.pk == job.pk
    assert claimed.state == JobState.RUNNING and claimed.worker_id == "engine:gpu004"


def test_the_foreman_leaves_jobs_kept_for_engines_queued(registered, settings):
    """Past the lease and the placement timeout, a Nomad job would be judged lost
    or unplaceable; one waiting in the database for an engine is neither."""
    settings.REFINERY_ENGINE_PIPELINES = ["basecalling"]
    settings.REFINERY_HEARTBEAT_LEASE_S = 0
    settings.REFINERY_NOMAD_PLACEMENT_TIMEOUT_S = 0
    job = basecalling_job()
    assert send_job_now(job)
    report = Foreman(outbox_grace_s=0).run_pass()
    job.refresh_from_db()
    assert job.state == JobState.QUEUED, job.failure_reason
    assert not any("lost" in key or "unplaceable" in key for key in report), report


def test_no_gpu_tier_is_registered_when_every_gpu_pipeline_is_kept_for_engines(settings):
    from runner.nomad.worker_classes import gpu_pipelines, worker_classes

    assert any(worker.gpu for worker in worker_classes())
    settings.REFINERY_ENGINE_PIPELINES = ["basecalling"]
    assert gpu_pipelines() == frozenset()
    assert not any(worker.gpu for worker in worker_classes())


def test_a_pipeline_engines_cannot_run_is_refused_naming_it(settings):
    settings.REFINERY_ENGINE_PIPELINES = ["salmon_quant"]
    with pytest.raises(
        ImproperlyConfigured, match=r"REFINERY_ENGINE_PIPELINES names \['salmon_quant'\]"
    ):
        send_job_now(ProcessorJob.objects.create(pipeline="salmon_quant"))


def test_an_unplaceable_basecalling_job_says_how_engines_could_take_it(registered, settings):
    settings.REFINERY_HEARTBEAT_LEASE_S = 0
    settings.REFINERY_NOMAD_PLACEMENT_TIMEOUT_S = 0
    job = basecalling_job()
    assert send_job_now(job)
    Foreman(outbox_grace_s=0).run_pass()
    job.refresh_from_db()
    assert job.state == JobState.FAILED and job.no_retry
    assert '"devices: no devices match request"' in job.failure_reason
    assert job.failure_reason.endswith(
        "if basecalling engines outside the cluster should run basecalling jobs, "
        "set REFINERY_ENGINE_PIPELINES=basecalling"
    )
