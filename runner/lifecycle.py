"""One job's life, the same for every kind: start it, run its work, make sure
it ends with an outcome.

The runtime loads the job row once (the worker's claim returns it; `run_job`
reads it) and hands that object on: to the child process that runs it, to the
registered work, to every step of its pipeline. Nothing on the way reads it
again while the transitions succeed.
"""

from __future__ import annotations

import os
import traceback

from common.models import Job, JobState
from common.version import refinery_version, worker_identity
from runner.registry import work_for


def start_here(job: Job) -> bool:
    """Mark `job` started by this process (created or queued → running); False
    when it already started elsewhere."""
    dispatch_id = os.environ.get("NOMAD_JOB_ID", "")
    return job.mark_started(worker_identity(), refinery_version(), dispatch_id)


def execute_job(job: Job) -> bool:
    """Run `job` (already marked running) with the code registered for its
    kind. Whatever that code does, the job leaves here succeeded or failed.
    Returns whether it succeeded."""
    print(f"refinery: running {job}", flush=True)
    try:
        work_for(job)(job)
    except Exception as error:
        traceback.print_exc()
        job.mark_failed(f"{type(error).__name__}: {error}")
    if job.state == JobState.RUNNING:
        job.mark_failed("the job's code returned without recording an outcome")
    reason = f": {job.failure_reason}" if job.failure_reason else ""
    print(f"refinery: {job}{reason}", flush=True)
    return job.state == JobState.SUCCEEDED
