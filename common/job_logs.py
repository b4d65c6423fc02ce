"""Where a job's log is, and reading it: the local spool while the job runs on
this machine, permanent storage once it ended."""

from __future__ import annotations

from pathlib import Path

from common.models import Job
from common.storage import StorageError, permanent_storage
from common.supervisor import log_key


def read_log(job: Job) -> bytes | None:
    """The job's whole log, or None when it has none (yet, or here)."""
    location = job.log_location
    if not location:
        return None
    spool = Path(location)
    if spool.is_absolute() and spool.is_file():
        return spool.read_bytes()
    storage = permanent_storage()
    key = log_key(job)
    try:
        with storage.open(key) as handle:
            return handle.read()
    except StorageError:
        return None
