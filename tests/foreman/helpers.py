"""Helpers the Foreman's tests share."""

from __future__ import annotations

import os
import time
from pathlib import Path

from common.models import Batch, ProcessorJob
from tests.foreman.servers import SmtpServer, WebhookServer


def smoke_job(accession: str = "smoke", state: str = "created", **metadata) -> ProcessorJob:
    """A smoke-test processor job for one new batch whose metadata says what the
    pipeline should do (sleep_s, fail, raise, exit_code, no_retry)."""
    batch = Batch.objects.create(
        source="local_files", accession=accession, pipeline_required="smoke_test",
        metadata=metadata,
    )  # fmt: skip
    job = ProcessorJob.objects.create(pipeline="smoke_test")
    job.batches.add(batch)
    if state in ("queued", "running"):
        job.mark_queued("local")
    if state == "running":
        job.mark_started("test-worker", "test")
    return job


def wait_for(predicate, timeout: float, what: str, every: float = 0.1):
    """Poll `predicate` until it returns something true; return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def children_of(pid: int) -> list[int]:
    """The live children of process `pid`, from every one of its threads."""
    tasks = Path(f"/proc/{pid}/task")
    try:
        return [int(c) for t in tasks.iterdir() for c in (t / "children").read_text().split()]
    except FileNotFoundError:
        return []


def job_process_of(worker_pid: int) -> int | None:
    """The worker's child that runs a job. It leads its own process group (the
    supervisor's setpgid), which tells it from a short-lived helper process the
    worker or a library may start; None until there is one."""
    for child in children_of(worker_pid):
        try:
            if os.getpgid(child) == child:
                return child
        except ProcessLookupError:
            continue
    return None


def operator_env(smtp_server: SmtpServer, webhook_server: WebhookServer) -> dict:
    """The environment that points a refinery process at these test servers."""
    return {
        "REFINERY_ADMINS": "ops@example.org",
        "REFINERY_EMAIL_HOST": "127.0.0.1",
        "REFINERY_EMAIL_PORT": str(smtp_server.port),
        "REFINERY_NOTIFY_WEBHOOK": webhook_server.url,
    }
