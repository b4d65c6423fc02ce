"""RAM escalation: attempts killed for memory step up their kind's ladder."""

from __future__ import annotations

import os
import signal

import pytest

from common.models import DownloaderJob, JobState, ProcessorJob
from foreman.passes import Foreman
from foreman.ram import next_ram_mb, ran_out_of_memory
from tests.foreman.helpers import job_process_of, smoke_job, wait_for

INDEX = "transcriptome_index_long"


def attempt(ram_mb=1024, started=True, reason="", exit_code=None, model=ProcessorJob, **fields):
    """An unsaved failed attempt with these facts."""
    from django.utils import timezone

    defaults = {"pipeline": INDEX} if model is ProcessorJob else {"downloader_task": "files"}
    return model(
        ram_mb=ram_mb,
        start_time=timezone.now() if started else None,
        failure_reason=reason,
        exit_code=exit_code,
        **{**defaults, **fields},
    )


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        ({"exit_code": 137, "reason": "worker process killed by signal 9 (SIGKILL)"}, 4096),
        ({"ram_mb": 4096, "exit_code": 137}, 8192),
        ({"ram_mb": 12288, "reason": "failed without a reason"}, 16384),
        ({"ram_mb": 65536, "exit_code": 137}, 65536),  # the top step stays the top
        ({"started": False, "reason": "failed without a reason"}, 1024),  # never started
        ({"reason": "exceeded runtime limit (60 s)"}, 1024),
        ({"reason": "worker lost"}, 1024),
        ({"exit_code": 137, "interrupted": True}, 1024),
        ({"model": DownloaderJob, "exit_code": 137}, 4096),
        ({"model": DownloaderJob, "ram_mb": 4096, "reason": ""}, 16384),
    ],
)
def test_the_next_attempt_gets_the_next_step_only_after_an_out_of_memory_death(facts, expected):
    assert next_ram_mb(attempt(**facts)) == expected


def test_a_ladder_can_be_set_per_pipeline(settings):
    settings.REFINERY_RAM_LADDERS_MB = {"processor": {INDEX: [2000, 3000], "default": [9000]}}
    assert next_ram_mb(attempt(exit_code=137)) == 2000
    assert next_ram_mb(attempt(exit_code=137, pipeline="smoke_test")) == 9000
    assert not ran_out_of_memory(attempt(reason="boom"))


@pytest.mark.django_db(transaction=True)
def test_a_job_the_kernel_kills_is_retried_one_step_up(start_manage, settings):
    """SIGKILL to the job's process, as the OOM killer does: the worker records
    exit 137 and the Foreman's retry gets more RAM."""
    job = smoke_job("oom", sleep_s=30)
    job.mark_queued("local")
    worker = start_manage("worker")
    wait_for(lambda: ProcessorJob.objects.get(pk=job.pk).state == JobState.RUNNING, 30, "start")
    child = wait_for(lambda: job_process_of(worker.pid), 30, "the job's process")
    os.kill(child, signal.SIGKILL)
    wait_for(lambda: ProcessorJob.objects.get(pk=job.pk).state == JobState.FAILED, 30, "failure")
    job.refresh_from_db()
    assert job.exit_code == 137 and "signal 9" in job.failure_reason
    Foreman(outbox_grace_s=0).run_pass()
    job.refresh_from_db()
    assert job.retry.ram_mb == 2048  # smoke_test uses the processors' default ladder
