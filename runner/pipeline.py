"""The one way a job's work is written: a pipeline of small named steps over a
job_context.

Surveys, downloads and processing are all `run_pipeline(job, steps)`. Each step
takes the job_context and returns it. A step that raises `JobError` (or sets
`success: False` with a `failure_reason`) ends the pipeline and fails the job
with that reason; any other exception fails it with the step's name and the
error. Whatever happens, the pipeline ends with `end_job`: it frees the job's
work directory and records the outcome, so a step never does either.

A step that stores results records them and the job's success in one
transaction with `record_success`, so a crash between the two cannot leave a
result that belongs to a failed attempt.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, TypedDict

from django.db import transaction
from django.utils import timezone

from common.models import Batch, Job, JobState, OriginalFile
from runner.work_dirs import remove_job_dir

logger = logging.getLogger(__name__)


class JobError(Exception):
    """A job's failure, with the reason an operator will read. `no_retry` says
    that another attempt cannot help (bad input, not a bad day). Every kind of
    job raises this one error; the runtime records it the same way for all."""

    def __init__(self, reason: str, no_retry: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.no_retry = no_retry


class JobContext(TypedDict, total=False):
    """The keys every kind of job shares; a pipeline declares its own keys in a
    subclass (`class IndexContext(JobContext, total=False): ...`)."""

    job: Job
    job_id: int
    started_at: datetime
    # None while running; False once a step failed; True once the outcome is recorded.
    success: bool | None
    failure_reason: str
    no_retry: bool
    # True when record_success found the job finished elsewhere (given up, cancelled).
    finished_elsewhere: bool
    # The job's scratch directory, when `prepare_job_dir` made one (end_job removes it).
    work_dir: Path
    # Downloaders and processors: the job's batches and the files they need, each once.
    batches: list[Batch]
    original_files: list[OriginalFile]


Step = Callable[[Any], Any]


def step_name(step: Step) -> str:
    return getattr(step, "__name__", repr(step))


def run_pipeline(job: Job, steps: Iterable[Step], **initial: Any) -> JobContext:
    """Run `steps` in order over a new job_context for `job` (already running),
    then `end_job`; see the module docstring. `initial` adds keys to the context."""
    context: JobContext = {
        "job": job,
        "job_id": job.pk,
        "started_at": timezone.now(),
        "success": None,
        **initial,
    }
    for step in steps:
        name = step_name(step)
        try:
            returned = step(context)
        except JobError as error:
            context.update(success=False, failure_reason=error.reason, no_retry=error.no_retry)
        except Exception as error:
            logger.exception("step %s failed", name)
            context.update(
                success=False, failure_reason=f"step {name} failed: {type(error).__name__}: {error}"
            )
        else:
            if not isinstance(returned, dict):
                context.update(
                    success=False,
                    failure_reason=f"step {name} returned {type(returned).__name__}, not the "
                    "job_context",
                )
            else:
                context = returned
        if context.get("success") is False:
            if not context.get("failure_reason"):
                context["failure_reason"] = f"step {name} reported failure without a reason"
            logger.error("pipeline stopped at %s: %s", name, context["failure_reason"])
            break
    return end_job(context)


def record_success(context: JobContext, record: Callable[[], object]) -> None:
    """Run `record` (which writes the job's results) and mark the job succeeded,
    in one transaction. If the job was finished elsewhere meanwhile (the Foreman
    gave up on it, an operator cancelled it), nothing `record` wrote is kept and
    JobError says so; the caller removes whatever it stored outside the database."""
    job = context["job"]
    with transaction.atomic():
        record()
        if not job.mark_succeeded():
            transaction.set_rollback(True)
            context["finished_elsewhere"] = True
            raise JobError(
                f"{job.kind} job {job.pk} became {job.state} while it ran; "
                "its results were discarded"
            )
    context["success"] = True


def end_job(context: JobContext) -> JobContext:
    """Free the job's work directory (the one `prepare_job_dir` made, whatever
    `work_dir` says now) and record the outcome (unless a step already recorded
    success with `record_success`)."""
    job = context["job"]
    if context.get("work_dir") is not None:
        remove_job_dir(job.kind, job.pk)
    if job.state == JobState.SUCCEEDED:
        if context.get("success") is False:  # a step after the results failed: the results stand
            logger.warning("after the job succeeded: %s", context.get("failure_reason"))
        context["success"] = True
        return context
    if context.get("success") is False:
        job.mark_failed(context.get("failure_reason", ""), no_retry=context.get("no_retry", False))
        return context
    context["success"] = job.mark_succeeded()
    if not context["success"]:
        context["failure_reason"] = f"{job.kind} job {job.pk} was {job.state} when it ended"
    return context
