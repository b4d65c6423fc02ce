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
