"""Running one job's code in the current process, and making sure it ends with
an outcome."""

from __future__ import annotations

import logging
import traceback

from common.job_lookup import JobKind, downloader_function, processor_function, surveyor_class
from common.models import Job, JobState, job_model

logger = logging.getLogger(__name__)


def run_implementation(job: Job) -> None:
    """Call the code that does this job's work."""
    if job.kind == JobKind.PROCESSOR:
        processor_function(job.pipeline)(job.pk)
    elif job.kind == JobKind.DOWNLOADER:
        downloader_function(job.downloader_task)(job.pk)
    else:
        surveyor_class(job.source)(job).survey()


def execute_job(kind: str, job_id: int) -> bool:
    """Run job `job_id` (already marked running) to its end. Whatever its code
    does, the job leaves here succeeded or failed. Returns whether it succeeded."""
    job = job_model(kind).objects.get(pk=job_id)
    print(f"refinery: running {job}", flush=True)
    try:
        run_implementation(job)
    except Exception as error:
        traceback.print_exc()
        job.mark_failed(f"{type(error).__name__}: {error}")
    job.refresh_from_db()
    if job.state == JobState.RUNNING:
        job.mark_failed("the job's code returned without recording an outcome")
    print(
        f"refinery: {job}" + (f": {job.failure_reason}" if job.failure_reason else ""), flush=True
    )
    return job.state == JobState.SUCCEEDED
