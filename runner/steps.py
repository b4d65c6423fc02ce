"""The steps downloaders and processors share: load the job's batches and their
files (each with one plain file name), and give the job a scratch directory of
its own."""

from __future__ import annotations

import logging
from collections.abc import Callable

from common.filenames import UnsafeName, check_name
from common.models import Job, JobState, OriginalFile
from common.storage import Storage, StorageError
from runner.pipeline import JobContext, JobError
from runner.work_dirs import make_job_dir

logger = logging.getLogger(__name__)


def start_job(context: JobContext) -> JobContext:
    """The job's batches and the files they need (each once); the job must be
    running (the runtime started it)."""
    job = context["job"]
    if job.state != JobState.RUNNING:
        raise JobError(
            f"{job.kind} job {job.pk} is {job.state}, not running: start it with "
            f"`manage.py run_job {job.kind} {job.pk}`",
            no_retry=True,
        )
    batches = list(job.batches.select_related("organism").order_by("id"))
    if not batches:
        raise JobError(f"{job.kind} job {job.pk} has no batches", no_retry=True)
    files = list(OriginalFile.objects.filter(batches__in=batches).distinct().order_by("id"))
    for original in files:
        checked_filename(original)
    context.update(batches=batches, original_files=files)
    return context


def checked_filename(original: OriginalFile) -> str:
    """The file's name, once it is certain to be one plain name. Paths and
    storage keys are built from it, and a row stored before surveys checked
    names may hold anything."""
    try:
        return check_name(original.filename, "its file name")
    except UnsafeName as error:
        reason = f"file {original.pk} ({original.source_url}): {error}"
        raise JobError(reason, no_retry=True) from None


def prepare_job_dir(context: JobContext) -> JobContext:
    """A fresh scratch directory that belongs to this job alone; `end_job`
    removes it. Paths in it are built with `runner.work_dirs.work_path`."""
    job = context["job"]
    context["work_dir"] = make_job_dir(job.kind, job.pk)
    return context


def discard_unrecorded_uploads(
    job: Job,
    storage: Storage,
    prefix_of: Callable[[Job], str],
    recorded_keys: Callable[[Job, str], set[str]],
) -> None:
    """Remove what earlier, failed attempts of `job` stored under their own
    `prefix_of(attempt)` and never recorded (a worker killed between storing and
    recording leaves such objects); `recorded_keys(attempt, prefix)` says which
    keys the database knows and must stay. A key that cannot be removed is
    logged and left: this attempt's own work does not depend on it."""
    earlier = job.retried_job  # None for a first attempt: nothing to read
    while earlier is not None:
        prefix = prefix_of(earlier)
        recorded = recorded_keys(earlier, prefix)
        for key in list(storage.list(prefix)):
            if key not in recorded:
                try:
                    storage.delete(key)
                except StorageError:
                    logger.warning("could not remove %s, stored by failed %s", key, earlier)
        earlier = earlier.retried_job
