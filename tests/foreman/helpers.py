"""Helpers the Foreman's tests share."""

from __future__ import annotations

import time

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


def operator_env(smtp_server: SmtpServer, webhook_server: WebhookServer) -> dict:
    """The environment that points a refinery process at these test servers."""
    return {
        "REFINERY_ADMINS": "ops@example.org",
        "REFINERY_EMAIL_HOST": "127.0.0.1",
        "REFINERY_EMAIL_PORT": str(smtp_server.port),
        "REFINERY_NOTIFY_WEBHOOK": webhook_server.url,
    }
