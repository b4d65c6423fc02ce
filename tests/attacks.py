"""Helpers for the tests that attack the refinery through its sources: a sentinel
folder outside every job's work directory, and running what a survey queued."""

from __future__ import annotations

from pathlib import Path

from common.models import DownloaderJob, JobState, ProcessorJob
from runner.registry import work_for


def make_sentinel(root: Path) -> Path:
    """A folder with a file in it, outside the refinery's folders."""
    sentinel = root / "sentinel"
    (sentinel / "inside").mkdir(parents=True)
    (sentinel / "keep.txt").write_text("must survive\n")
    (sentinel / "inside" / "keep-too.txt").write_text("must survive too\n")
    return sentinel


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (following nothing) with its content."""
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


def run_queued_jobs() -> list:
    """Run every queued downloader job, then every queued processor job, in this
    process as `manage.py run_job` would; the jobs as they ended."""
    ran = []
    for model in (DownloaderJob, ProcessorJob):
        for job in model.objects.filter(state=JobState.QUEUED).order_by("id"):
            assert job.mark_started("test-worker", "test")
            work_for(job)(job)
            job.refresh_from_db()
            ran.append(job)
    return ran
