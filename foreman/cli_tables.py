"""The tables `manage.py jobs` draws on a terminal (tabulate lays them out)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone
from tabulate import tabulate

from common.models import Job
from foreman.job_summaries import ran_for, what
from foreman.jobrefs import job_ref

REASON_WIDTH = 70


def when(moment: datetime | None) -> str:
    """A moment with seconds and its zone, as the admin shows it (UTC)."""
    if moment is None:
        return "-"
    utc = timezone.localtime(moment, timezone.get_fixed_timezone(0))
    return utc.strftime("%Y-%m-%d %H:%M:%S UTC")


def span(delta: timedelta | None) -> str:
    """A duration as people read it: `3.5 s`, `4 min 05 s`, `2 h 04 min` (the
    admin shows durations the same way)."""
    if delta is None:
        return "-"
    seconds = max(delta.total_seconds(), 0.0)
    if seconds < 60:
        return f"{seconds:.1f} s".replace(".0 s", " s")
    minutes, seconds = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def clip(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """Left-aligned columns under a ruled header; an empty cell shows as "-"."""
    rows = [["-" if cell in (None, "") else cell for cell in row] for row in rows]
    return tabulate(rows, headers, "simple", disable_numparse=True, stralign="left")


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


def render_detail(detail: dict) -> str:
    """`jobs show` on a terminal, from `job_summaries.job_detail`."""
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
    lines = tabulate(fields, tablefmt="plain", disable_numparse=True).splitlines()
    out = [detail["job"], *("  " + line for line in lines), "", "Attempts"]
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
