"""The outbox: jobs are sent after the transaction that created them commits.

A job is held back, and stays `created` for the Foreman to send later, when its
kind is paused (`manage.py jobs pause KIND`) or when sending it would pass a cap
on dispatched, unfinished jobs (`REFINERY_MAX_QUEUED_JOBS` in total,
`REFINERY_MAX_QUEUED_BY_KIND` per kind). The caps are soft: two processes
sending at the same moment may each take the last place.

Each process reads the pauses and counts at most once a second and counts its
own sends in between: reading them for every job would cost time in proportion
to the queue, for every job sent.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import connection, transaction
from retrying import retry

from common.models import JOB_MODELS, Job, JobState, PausedKind
from common.models.jobs import UNFINISHED
from common.secrets import redact
from runner.dispatch.base import Dispatcher, DispatchError, get_dispatcher
from runner.engines import ENGINE_QUEUE, kept_for_engines
from runner.registry import wait_reason

logger = logging.getLogger(__name__)

SEND_ATTEMPTS = 3
# Dispatched and not finished: what the caps count.
IN_FLIGHT = (JobState.QUEUED, JobState.RUNNING)


def send_job(job: Job) -> None:
    """Send `job` once the current transaction commits (at once outside one).
    A job that cannot be sent stays `created`; the Foreman sends it later."""
    transaction.on_commit(lambda: send_job_now(job), robust=True)


def _states_sql(states: tuple[str, ...]) -> str:
    # Job states are fixed words from JobState, never input, so they are inlined:
    # SQLite uses a partial index only when the query repeats its condition literally.
    return "state IN (" + ", ".join(f"'{state}'" for state in states) + ")"


# The unfinished-jobs partial index's own condition, then the in-flight states.
IN_FLIGHT_SQL = f"{_states_sql(UNFINISHED)} AND {_states_sql(IN_FLIGHT)}"


def in_flight_counts() -> dict[str, int]:
    """Dispatched, unfinished jobs per kind, in one query that reads only the small
    partial index of unfinished jobs."""
    quote = connection.ops.quote_name
    selects = [
        f"(SELECT COUNT(*) FROM {quote(model._meta.db_table)} WHERE {IN_FLIGHT_SQL})"
        for model in JOB_MODELS.values()
    ]
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(selects))
        counts = cursor.fetchone()
    return dict(zip(JOB_MODELS, counts, strict=True))


def dispatch_room(kind: str, counts: dict[str, int], total_in_flight: int | None = None) -> int:
    """How many more jobs of `kind` the caps allow, given the jobs in flight per
    kind (`counts`) and in total (at least their sum)."""
    total = max(sum(counts.values()), total_in_flight or 0)
    kind_cap = settings.REFINERY_MAX_QUEUED_BY_KIND.get(kind, settings.REFINERY_MAX_QUEUED_JOBS)
    return max(0, min(kind_cap - counts.get(kind, 0), settings.REFINERY_MAX_QUEUED_JOBS - total))


DISPATCH_STATE_TTL_S = 1.0
_dispatch_state_cache: dict = {}


def forget_dispatch_state() -> None:
    """Read pauses and counts afresh at the next send (after a pause or resume)."""
    _dispatch_state_cache.clear()


def _recent_dispatch_state(kind: str) -> tuple[bool, dict[str, int]]:
    """Whether `kind` is paused and the in-flight counts, as read at most
    DISPATCH_STATE_TTL_S ago, plus what this process sent since."""
    now = time.monotonic()
    if now - _dispatch_state_cache.get("read_at", -DISPATCH_STATE_TTL_S) >= DISPATCH_STATE_TTL_S:
        _dispatch_state_cache.update(
            read_at=now, paused=PausedKind.paused_kinds(), counts=in_flight_counts()
        )
    return kind in _dispatch_state_cache["paused"], _dispatch_state_cache["counts"]


def _count_sent(kind: str) -> None:
    counts = _dispatch_state_cache.get("counts")
    if counts is not None:
        counts[kind] = counts.get(kind, 0) + 1


def hold_reason(kind: str) -> str:
    """Why a new job of `kind` must wait, or "" when it may be sent now."""
    paused, counts = _recent_dispatch_state(kind)
    if paused:
        return f"{kind} jobs are paused (`manage.py jobs resume {kind}`)"
    if dispatch_room(kind, counts) <= 0:
        return f"the cap on dispatched {kind} jobs is reached"
    return ""


def send_job_now(job: Job) -> bool:
    """Dispatch a committed `created` job now, unless its kind is paused or
    capped. Returns whether it was sent."""
    if job.state != JobState.CREATED:
        return False
    reason = hold_reason(job.kind) or wait_reason(job)
    if reason:
        logger.info("%s stays created: %s; the Foreman will send it later", job, reason)
        return False
    sent = dispatch_now(job)
    if sent:
        _count_sent(job.kind)
    return sent


def dispatch_now(job: Job, dispatcher: Dispatcher | None = None) -> bool:
    """Hand a `created` job to the dispatcher, with a few quick retries, and mark
    it queued; the caller has checked pauses and caps. Returns whether it was sent.
    A job kept for remote engines (REFINERY_ENGINE_PIPELINES) is queued in the
    database for them instead."""
    if kept_for_engines(job):
        return job.mark_queued(ENGINE_QUEUE)
    dispatcher = dispatcher or get_dispatcher()

    @retry(
        stop_max_attempt_number=SEND_ATTEMPTS,
        wait_exponential_multiplier=100,
        wait_exponential_max=1000,
        retry_on_exception=lambda error: isinstance(error, DispatchError),
    )
    def send() -> str:
        return dispatcher.send(job)

    try:
        dispatch_id = send()
    except DispatchError as error:
        logger.warning(
            "%s stays created: %s could not take it (%s); the Foreman will send it later",
            job,
            dispatcher.name,
            redact(str(error)),
        )
        return False
    job.mark_queued(dispatch_id)
    return True
