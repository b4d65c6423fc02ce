"""The figures of the operators' overview, computed once for the admin's
overview page and `/api/stats/?window=` alike, so both always agree.

Everything returned is plain JSON (times as ISO 8601 strings in UTC)."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import Count, Q
from django.db.models.functions import TruncHour
from django.utils import timezone

from common.models import JOB_MODELS, JobState, PausedKind, ProcessorJob, RunState, SequencingRun
from foreman.jobrefs import job_ref
from foreman.models import ForemanBeat
from runner.dispatch.outbox import dispatch_room, in_flight_counts

WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7)}
DEFAULT_WINDOW = "24h"
STATES = [state.value for state in JobState]
FAILURES_SHOWN = 50
WORKERS_SHOWN = 100
# A Foreman whose last pass is older than this is not alive (as `jobs status` says).
FOREMAN_ALIVE_S = 300


class BadWindow(ValueError):
    """A window that is none of WINDOWS."""


def parse_window(text: str | None) -> str:
    text = (text or DEFAULT_WINDOW).strip()
    if text not in WINDOWS:
        raise BadWindow(f"not one of {', '.join(WINDOWS)}: {text!r}")
    return text


def _iso(when: datetime | None) -> str | None:
    return when.astimezone(UTC).isoformat() if when else None


def counts(now: datetime) -> dict[str, dict[str, dict[str, int]]]:
    """Jobs created in each of WINDOWS up to `now`, by kind and state (every state,
    zeros too): one query per kind, each window a filtered count."""
    widest = max(WINDOWS.values())
    by_window = {f"in_{name}": Count("id", filter=Q(created_at__gte=now - span))
                 for name, span in WINDOWS.items()}  # fmt: skip
    result: dict[str, dict[str, dict[str, int]]] = {name: {} for name in WINDOWS}
    for kind, model in JOB_MODELS.items():
        rows = (
            model.objects.filter(created_at__gte=now - widest).values("state").annotate(**by_window)
        )
        found = {row["state"]: row for row in rows}
        for name in WINDOWS:
            column = f"in_{name}"
            result[name][kind] = {state: found.get(state, {}).get(column, 0) for state in STATES}
    return result


def finished_per_hour(since: datetime, now: datetime) -> list[dict]:
    """Jobs of every kind that ended in each hour since `since`, by final state."""
    start = since.replace(minute=0, second=0, microsecond=0)
    hours = {}
    hour = start
    while hour <= now:
        hours[hour] = {"succeeded": 0, "failed": 0}
        hour += timedelta(hours=1)
    for model in JOB_MODELS.values():
        rows = (
            model.objects.filter(end_time__gte=since, end_time__lte=now)
            .filter(state__in=[JobState.SUCCEEDED, JobState.FAILED])
            .annotate(hour=TruncHour("end_time", tzinfo=UTC))
            .values("hour", "state")
            .annotate(n=Count("id"))
        )
        for row in rows:
            bucket = hours.setdefault(row["hour"], {"succeeded": 0, "failed": 0})
            bucket[row["state"]] += row["n"]
    return [{"hour": _iso(hour), **hours[hour]} for hour in sorted(hours)]


def runtimes(since: datetime) -> dict[str, dict]:
    """Seconds that the processor jobs which ended since `since` ran, per pipeline:
    each run's, and a summary."""
    per_pipeline: dict[str, list[float]] = {}
    rows = ProcessorJob.objects.filter(
        end_time__gte=since, start_time__isnull=False, state__in=[JobState.SUCCEEDED]
    ).values_list("pipeline", "start_time", "end_time")
    for pipeline, start, end in rows:
        per_pipeline.setdefault(pipeline, []).append(round((end - start).total_seconds(), 3))
    result = {}
    for pipeline, seconds in sorted(per_pipeline.items()):
        seconds.sort()
        result[pipeline] = {
            "runs": len(seconds),
            "min_s": seconds[0],
            "median_s": statistics.median(seconds),
            "max_s": seconds[-1],
            "seconds": seconds,
        }
    return result


def foreman_health(now: datetime) -> dict:
    beat = ForemanBeat.latest()
    if beat is None:
        return {"alive": False, "name": None, "last_pass_at": None, "age_s": None}
    age = (now - beat.beat_at).total_seconds()
    return {
        "alive": age <= FOREMAN_ALIVE_S,
        "name": beat.name,
        "last_pass_at": _iso(beat.beat_at),
        "age_s": round(age, 1),
        "passes": beat.passes,
        "last_pass_s": beat.last_pass_s,
    }


def workers() -> list[dict]:
    """Each running job (the stalest first, at most WORKERS_SHOWN per kind): its
    worker and the worker's last heartbeat."""
    running = []
    for model in JOB_MODELS.values():
        running_jobs = model.objects.filter(state=JobState.RUNNING).order_by("heartbeat_at", "id")
        for job in running_jobs[:WORKERS_SHOWN]:
            running.append(
                {"job": job_ref(job), "worker": job.worker_id,
                 "heartbeat_at": _iso(job.heartbeat_at), "started_at": _iso(job.start_time)}
            )  # fmt: skip
    return running


def queues() -> dict[str, dict]:
    """Per kind: jobs waiting to be sent, in flight, its cap and the room left."""
    flying = in_flight_counts()
    paused = set(PausedKind.objects.values_list("kind", flat=True))
    caps, total_cap = settings.REFINERY_MAX_QUEUED_BY_KIND, settings.REFINERY_MAX_QUEUED_JOBS
    return {
        kind: {
            "created": model.objects.filter(state=JobState.CREATED).count(),
            "in_flight": flying[kind],
            "cap": caps.get(kind, total_cap),
            "room": dispatch_room(kind, flying),
            "paused": kind in paused,
        }
        for kind, model in JOB_MODELS.items()
    }


def recent_failures(since: datetime, limit: int = FAILURES_SHOWN) -> list[dict]:
    """Failed attempts that ended since `since`, across kinds, newest first."""
    found = []
    for kind, model in JOB_MODELS.items():
        query = model.objects.filter(state=JobState.FAILED, end_time__gte=since)
        for job in query.order_by("-end_time", "-id")[:limit]:
            found.append((job.end_time, kind, job))
    found.sort(key=lambda row: (row[0], row[1], row[2].pk), reverse=True)
    return [
        {"job": job_ref(job), "kind": kind, "id": job.pk, "ended_at": _iso(ended),
         "reason": job.failure_reason, "retried": job.retried, "has_log": bool(job.log_location)}
        for ended, kind, job in found[:limit]
    ]  # fmt: skip


def runs_by_state() -> dict[str, dict[str, int]]:
    """The lab's sequencing runs per platform and state, every state listed."""
    found = {platform: dict.fromkeys(RunState.values, 0) for platform in ("illumina", "nanopore")}
    rows = SequencingRun.objects.values_list("platform", "state").annotate(n=Count("id"))
    for platform, state, n in rows.order_by():
        found.setdefault(platform, dict.fromkeys(RunState.values, 0))[state] = n
    return found


def overview(window: str = DEFAULT_WINDOW, now: datetime | None = None) -> dict:
    """Every figure of the overview for `window` (one of WINDOWS)."""
    now = now or timezone.now()
    since = now - WINDOWS[parse_window(window)]
    return {
        "window": window,
        "since": _iso(since),
        "now": _iso(now),
        "counts": counts(now),
        "finished_per_hour": finished_per_hour(since, now),
        "runtimes": runtimes(since),
        "foreman": foreman_health(now),
        "workers": workers(),
        "queues": queues(),
        "paused": sorted(PausedKind.objects.values_list("kind", flat=True)),
        "recent_failures": recent_failures(since),
        "runs": runs_by_state(),
    }
