"""What an operator can do to jobs (`manage.py jobs`): retry, cancel, pause and
resume. Each goes through the job's transition methods and the Foreman's own
retry code, so the history reads the same whoever acted."""

from __future__ import annotations

import getpass
import re
import socket
from collections.abc import Iterator
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError

from common.models import JobState, PausedKind, job_model
from common.models.jobs import UNFINISHED, Job
from foreman.attempts import give_up, retry
from foreman.models import OperatorAction
from foreman.passes import paged
from runner.dispatch import get_dispatcher, send_job_now
from runner.dispatch.outbox import forget_dispatch_state

CANCELLED = "cancelled by an operator"


class OperatorError(Exception):
    """The action cannot be done; the message says why and what to do instead."""


def operator_name() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def record(action: str, target: str, outcome: str, by: str | None = None) -> OperatorAction:
    """Who did what to which job or kind, and when (the CLI's and the web's alike)."""
    return OperatorAction.objects.create(
        action=action, target=target, outcome=outcome, by=by or operator_name()
    )


def job_target(job: Job) -> str:
    return f"{job.kind}:{job.pk}"


def retry_refusal(job: Job) -> str | None:
    """Why `job` cannot be retried, or None when it can (as it is in the database)."""
    if job.state != JobState.FAILED:
        hint = " (cancel it first)" if job.state in UNFINISHED else ""
        return f"{job} is {job.state}: only failed jobs can be retried{hint}"
    if job.retried:
        return f"{job} was already retried: its latest attempt is {job.attempts[-1]}"
    return None


def retry_job(job: Job, ram_mb: int | None = None, by: str | None = None) -> Job:
    """One more attempt of a failed job, even one the Foreman gave up on or that
    said no_retry; sent at once unless its kind is paused or capped. If it fails
    too, the Foreman gives up on it again (it has no retries left)."""
    job.refresh_from_db()
    refusal = retry_refusal(job)
    if refusal:
        raise OperatorError(refusal)
    new = retry(job, ram_mb=ram_mb)
    if new is None:
        raise OperatorError(f"{job} was retried by someone else just now")
    send_job_now(new)
    new.refresh_from_db()
    record("retry", job_target(job), f"new attempt {job_target(new)} ({new.state})", by)
    return new


def failed_since(kinds: list[str], since: datetime, reason: str | None = None) -> Iterator[Job]:
    """Failed attempts without a later one that ended at or after `since` (and
    whose reason matches the regular expression `reason`, if given)."""
    try:
        pattern = re.compile(reason) if reason else None
    except re.error as error:
        raise OperatorError(f"--reason {reason!r} is not a regular expression: {error}") from None
    for kind in kinds:
        failed = job_model(kind).objects.filter(
            state=JobState.FAILED, retried=False, end_time__gte=since
        )
        for job in paged(failed, "end_time", settings.REFINERY_FOREMAN_PAGE_SIZE):
            if pattern is None or pattern.search(job.failure_reason):
                yield job


def cancel_job(job: Job, reason: str = "", by: str | None = None) -> str:
    """Stop an unfinished job for good (no retry, no notification), or settle a
    failed one so the Foreman does not retry it. Returns what was done."""
    done = _cancel(job, reason)
    record("cancel", job_target(job), done, by)
    return done


def _cancel(job: Job, reason: str) -> str:
    why = f"{CANCELLED}: {reason}" if reason else CANCELLED
    job.refresh_from_db()
    if job.state in UNFINISHED:
        was = job.state
        if not job.mark_failed(why, no_retry=True):
            raise OperatorError(f"{job} ended while being cancelled; see `jobs show`")
        give_up(job, notify_operators=False)
        if was != JobState.CREATED:
            get_dispatcher().stop(job)
        return f"cancelled {job.kind}:{job.pk} (it was {was})"
    if job.state == JobState.FAILED and not job.retried:
        if give_up(job, notify_operators=False):
            return f"{job.kind}:{job.pk} had failed; the Foreman will not retry it"
        return f"{job.kind}:{job.pk} had failed and was already given up on"
    raise OperatorError(f"{job} is {job.state}{' and was retried' if job.retried else ''}: "
                        "nothing to cancel")  # fmt: skip


def pause(kind: str, reason: str = "", by: str | None = None) -> bool:
    """Stop dispatching `kind`; returns False when it was paused already."""
    by = by or operator_name()
    try:
        _, created = PausedKind.objects.get_or_create(
            kind=kind, defaults={"paused_by": by, "reason": reason}
        )
    except IntegrityError:  # paused by someone else at the same moment
        return False
    forget_dispatch_state()
    if created:
        record("pause", kind, f"paused{': ' + reason if reason else ''}", by)
    return created


def resume(kind: str, by: str | None = None) -> bool:
    """Dispatch `kind` again (the Foreman sends what waited at its next pass);
    returns False when it was not paused."""
    deleted, _ = PausedKind.objects.filter(kind=kind).delete()
    forget_dispatch_state()
    if deleted:
        record("resume", kind, "resumed", by)
    return bool(deleted)
