"""Scratch directories: each job gets one of its own on the machine that runs it,
so concurrent jobs never share files.

A job writes and deletes only inside its own directory: paths in it are built
with `work_path`, which refuses any that would land outside (through `..`, an
absolute part or a link), and the directory a job removes at its end is the one
`make_job_dir` made for it, never a path a step or a source supplied.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from django.conf import settings

from common.filenames import shorten

logger = logging.getLogger(__name__)


def job_work_dir(kind: str, job_id: int) -> Path:
    """The scratch directory of one job (not created here)."""
    return Path(settings.REFINERY_WORK_DIR) / f"{kind}_job_{int(job_id)}"


def make_job_dir(kind: str, job_id: int) -> Path:
    """A fresh, empty scratch directory for the job. What an earlier run of the
    same job left there is removed; a link left in its place is removed, never
    followed."""
    path = job_work_dir(kind, job_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_path(path)
    path.mkdir()
    return path


def remove_job_dir(kind: str, job_id: int) -> None:
    """Remove the job's own scratch directory (and only that)."""
    remove_path(job_work_dir(kind, job_id))


def remove_path(path: Path) -> None:
    """Remove a file, a link (never what it points to) or a folder with its contents."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink(missing_ok=True)
    elif path.is_dir():
        shutil.rmtree(path, ignore_errors=True)  # rmtree removes links, never follows them


def work_path(work_dir: Path, *parts: str | Path) -> Path:
    """`work_dir` joined with `parts`, once it is certain to lie inside
    `work_dir` (following the links that exist on the way); otherwise the job
    fails with `no_retry`, since its inputs would do the same again."""
    from runner.pipeline import JobError  # runner.pipeline imports this module

    for part in parts:
        if "\0" in str(part):
            raise JobError(
                f"{shorten(str(part))} is not a usable path in the job's work directory",
                no_retry=True,
            )
    path = Path(work_dir).joinpath(*parts)
    base = Path(work_dir).resolve()
    resolved = path.resolve()
    if resolved != base and not resolved.is_relative_to(base):
        raise JobError(
            f"refused to use {shorten(str(path))}: it is outside the job's work directory "
            f"{work_dir}",
            no_retry=True,
        )
    return path
