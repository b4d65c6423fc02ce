"""What the Nanopore tests share: a survey run in this process, and the Dorado
stand-in (tests/processors/standins/dorado) as an executable."""

from __future__ import annotations

import sys
from pathlib import Path

from common.models import JobState, SurveyJob

DORADO_STANDIN = Path(__file__).resolve().parent / "processors" / "standins" / "dorado"


def survey_nanopore(*paths: Path) -> SurveyJob:
    """One survey, run here as `manage.py survey nanopore_runs` runs it in its child."""
    from surveyor.nanopore_runs import NanoporeRunsSurveyor

    job = SurveyJob.objects.create(
        source="nanopore_runs", parameters={"paths": [str(p) for p in paths]}
    )
    assert job.mark_started("test-worker", "test")
    NanoporeRunsSurveyor(job).survey()
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED, job.failure_reason
    return job


def install_dorado_standin(folder: Path) -> Path:
    """`folder/dorado`: runs the stand-in with this interpreter (which has `pod5`).
    Dorado itself cannot be installed here: it is a download from its maker."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "dorado"
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{DORADO_STANDIN}" "$@"\n')
    path.chmod(0o755)
    return path


def queued_basecalling_jobs(root: Path, files: int = 3, reads: int = 4, batch_files: int = 1):
    """A finished run of `files` pod5 files, surveyed and downloaded: its
    basecalling jobs (one per `batch_files` files) are queued. Returns the run."""
    from django.conf import settings

    from common.models import DownloaderJob
    from demo.nanopore_run import make_nanopore_run
    from runner.registry import work_for

    settings.REFINERY_POD5_BATCH_FILES = batch_files
    run = make_nanopore_run(root, files=files, reads=reads)
    survey_nanopore(root)
    for job in DownloaderJob.objects.filter(state=JobState.QUEUED):
        assert job.mark_started("test-worker", "test")
        work_for(job)(job)
        job.refresh_from_db()
        assert job.state == JobState.SUCCEEDED, job.failure_reason
    return run
