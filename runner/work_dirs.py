"""Scratch directories: each job gets one of its own on the machine that runs it,
so concurrent jobs never share files."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings


def job_work_dir(kind: str, job_id: int) -> Path:
    """The scratch directory of one job (not created here)."""
    return Path(settings.REFINERY_WORK_DIR) / f"{kind}_job_{job_id}"
