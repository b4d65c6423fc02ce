"""What `manage.py jobs` says about jobs, as plain data: a summary of each job,
the whole story of one (`jobs show`), and the JSON that `--json` prints."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from common.models import ComputedFile, Job, OriginalFile
from common.models.choices import JobKind
from foreman.jobrefs import job_ref
from foreman.models import Notification


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


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")
