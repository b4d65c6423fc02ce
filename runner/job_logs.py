"""Where a job's log is, and reading it: the local spool while a worker on this
machine runs the job, permanent storage once it ended."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from common.models import Job
from common.storage import StorageError, permanent_storage


def log_key(job: Job) -> str:
    """Where a job's log is kept in permanent storage once it ended."""
    return f"logs/{job.kind}/{job.kind}-{job.pk}.log"


def spool_path(job: Job) -> Path:
    """Where a worker on this machine writes a job's log while it runs."""
    return Path(settings.REFINERY_LOG_SPOOL) / f"{job.kind}-{job.pk}.log"


def local_log_file(job: Job) -> Path | None:
    """The job's log as a file on this machine (a worker's spool while the job
    runs, or local permanent storage), or None when it is elsewhere."""
    if not job.log_location:
        return None
    path = Path(job.log_location)
    return path if path.is_absolute() and path.is_file() else None


def read_log(job: Job, offset: int = 0) -> bytes | None:
    """The job's log from byte `offset` on, or None when it has none (yet, or
    not reachable from here)."""
    if not job.log_location:
        return None
    local = local_log_file(job)
    if local is not None:
        with open(local, "rb") as log:
            log.seek(offset)
            return log.read()
    try:
        with permanent_storage().open(log_key(job)) as handle:
            return handle.read()[offset:]
    except StorageError:
        return None
