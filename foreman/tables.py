"""Jobs as rows of a readable table and as JSON, for `manage.py jobs`."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from common.job_lookup import JobKind
from common.models import ComputedFile, Job, OriginalFile
from foreman.jobrefs import job_ref
from foreman.models import Notification

REASON_WIDTH = 70


def when(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return timezone.localtime(moment, timezone.get_fixed_timezone(0)).strftime("%Y-%m-%d %H:%M:%S")


def span(delta: timedelta | None) -> str:
    if delta is None:
        return "-"
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return f"{max(seconds, 0)}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def clip(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """Left-aligned columns, as wide as their widest cell."""
    cells = [
        [str(c) for c in headers],
        *[["-" if c in (None, "") else str(c) for c in r] for r in rows],
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def what(job: Job) -> str:
    """The pipeline, task or source: what the job does."""
    if job.kind == JobKind.PROCESSOR:
        return job.pipeline
    if job.kind == JobKind.DOWNLOADER:
        return job.downloader_task
    return job.source


def ran_for(job: Job) -> timedelta | None:
    if job.start_time is None:
        return None
    return (job.end_time or timezone.now()) - job.start_time


def job_summary(job: Job) -> dict:
    """The fields `jobs list --json` gives for a job."""
    return {
        "job": job_ref(job),
        "kind": job.kind,
        "id": job.pk,
        "state": job.state,
        "what": what(job),
        "attempt": job.num_retries + 1,
        "ram_mb": job.ram_mb,
        "created_at": job.created_at,
        "dispatched_at": job.dispatched_at,
        "start_time": job.start_time,
        "end_time": job.end_time,
        "heartbeat_at": job.heartbeat_at,
        "worker_id": job.worker_id,
        "dispatch_id": job.dispatch_id,
        "failure_reason": job.failure_reason,
        "no_retry": job.no_retry,
        "interrupted": job.interrupted,
        "exit_code": job.exit_code,
        "retried": job.retried,
        "given_up_at": job.given_up_at,
        "log_location": job.log_location,
    }


LIST_HEADERS = ["JOB", "STATE", "WHAT", "TRY", "RAM", "CREATED", "RAN", "REASON"]


def list_row(job: Job) -> list:
    state = (
        job.state + (", given up" if job.given_up_at else "") + (", retried" if job.retried else "")
    )
    return [
        job_ref(job),
        state,
        what(job),
        job.num_retries + 1,
        f"{job.ram_mb} MB",
        when(job.created_at),
        span(ran_for(job)),
        clip(job.failure_reason, REASON_WIDTH),
    ]


def job_detail(job: Job) -> dict:
    """Everything `jobs show` says about a job: its fields, its attempt chain, its
    batches and their files, its results and the notification about it."""
    batches = list(job.batches.order_by("id")[:200])  # a survey's: those it found
    files = list(OriginalFile.objects.filter(batches__in=batches).distinct().order_by("id")[:200])
    results = (
        list(ComputedFile.objects.filter(processor_job=job).order_by("id"))
        if job.kind == JobKind.PROCESSOR
        else []
    )
    notification = Notification.objects.filter(job_kind=job.kind, job_id=job.pk).first()
    return {
        **job_summary(job),
        "attempts": [job_summary(attempt) for attempt in job.attempts],
        "batches": [
            {
                "id": b.pk,
                "batch": str(b),
                "status": b.status,
                "pipeline_required": b.pipeline_required,
            }
            for b in batches
        ],
        "files": [
            {
                "id": f.pk,
                "filename": f.filename,
                "size": f.size,
                "sha256": f.sha256,
                "downloaded": f.is_downloaded,
                "source_url": f.source_url,
            }
            for f in files
        ],
        "results": [
            {"id": c.pk, "filename": c.filename, "size": c.size, "sha256": c.sha256, "key": c.key}
            for c in results
        ],
        "notification": None
        if notification is None
        else {
            "subject": notification.subject,
            "created_at": notification.created_at,
            "email_sent_at": notification.email_sent_at,
            "webhook_sent_at": notification.webhook_sent_at,
            "delivered_at": notification.delivered_at,
            "last_error": notification.last_error,
        },
    }


def render_detail(detail: dict) -> str:
    """`jobs show` on a terminal."""
    fields = [
        ("state", detail["state"] + (" (given up)" if detail["given_up_at"] else "")),
        ("does", detail["what"]),
        ("attempt", f"{detail['attempt']} of the chain below"),
        ("failure reason", detail["failure_reason"] or "-"),
        ("no_retry", detail["no_retry"]),
        ("exit code", "-" if detail["exit_code"] is None else detail["exit_code"]),
        ("RAM", f"{detail['ram_mb']} MB"),
        ("created", when(detail["created_at"])),
        ("dispatched", when(detail["dispatched_at"])),
        ("started", when(detail["start_time"])),
        ("ended", when(detail["end_time"])),
        ("last heartbeat", when(detail["heartbeat_at"])),
        ("worker", detail["worker_id"] or "-"),
        ("dispatch id", detail["dispatch_id"] or "-"),
        ("log", detail["log_location"] or "-"),
    ]
    width = max(len(name) for name, _ in fields)
    out = [f"{detail['job']}", *(f"  {name.ljust(width)}  {value}" for name, value in fields), ""]
    out.append("Attempts")
    out.append(table(
        ["#", "JOB", "STATE", "RAM", "STARTED", "ENDED", "EXIT", "WORKER", "REASON"],
        [
            [n, a["job"] + (" *" if a["job"] == detail["job"] else ""), a["state"],
             f"{a['ram_mb']} MB", when(a["start_time"]), when(a["end_time"]), a["exit_code"],
             a["worker_id"], clip(a["failure_reason"], REASON_WIDTH)]
            for n, a in enumerate(detail["attempts"], start=1)
        ],
    ))  # fmt: skip
    if detail["batches"]:
        out += ["", "Batches"]
        out.append(table(
            ["ID", "BATCH", "STATUS", "PIPELINE"],
            [[b["id"], b["batch"], b["status"], b["pipeline_required"]] for b in detail["batches"]],
        ))  # fmt: skip
    if detail["files"]:
        out += ["", "Files"]
        out.append(table(
            ["ID", "FILENAME", "SIZE", "DOWNLOADED", "SHA-256"],
            [[f["id"], f["filename"], f["size"], "yes" if f["downloaded"] else "no",
              (f["sha256"] or "")[:16]] for f in detail["files"]],
        ))  # fmt: skip
    if detail["results"]:
        out += ["", "Results"]
        out.append(table(
            ["ID", "FILENAME", "SIZE", "SHA-256", "KEY"],
            [[r["id"], r["filename"], r["size"], r["sha256"][:16], r["key"]]
             for r in detail["results"]],
        ))  # fmt: skip
    note = detail["notification"]
    if note:
        state = (
            f"delivered {when(note['delivered_at'])}"
            if note["delivered_at"]
            else (f"not delivered yet ({note['last_error'] or 'pending'})")
        )
        out += ["", f"Operators notified: {note['subject']} — {state}"]
    return "\n".join(out)


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")
