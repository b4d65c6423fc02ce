"""The rows a survey of a complete Illumina run makes (a SequencingRun, its
`archive` batch and, with a sample sheet, its `fastq` batch, sharing one
`illumina_run` DownloaderJob), made here directly: the survey is tested with
the surveyor."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import connection

from common.models import Batch, DownloaderJob, SequencingRun
from tests.illumina_archive.helpers import RUN_ID, small_run


def make_run_rows(folder: Path, fastq: bool = True) -> tuple[SequencingRun, DownloaderJob]:
    run = SequencingRun.objects.create(
        platform="illumina",
        run_id=folder.name,
        location=str(folder),
        flowcell=folder.name.rsplit("_", 1)[-1],
        instrument_id="M01234",
        instrument_type="MiSeq",
        run_number=42,
    )
    run.move_to("complete", "RTAComplete.txt is 20 min old")
    variants = [("archive", "illumina_run_archive")] + ([("fastq", "bcl2fastq")] if fastq else [])
    batches = [
        Batch.objects.create(
            source="illumina_runs",
            accession=run.run_id,
            variant=variant,
            pipeline_required=pipeline,
            sequencing_run=run,
            metadata={"location": str(folder)},
        )
        for variant, pipeline in variants
    ]
    job = DownloaderJob.objects.create(downloader_task="illumina_run")
    job.batches.set(batches)
    return run, job


@pytest.fixture
def storage_kind(request, refinery_dirs) -> str:
    """S3 (moto on loopback) on PostgreSQL, local folders on SQLite: the two
    deployments. (`make test` runs both; the S3-only tests run on either.)"""
    if connection.vendor == "postgresql":
        request.getfixturevalue("s3_storage")
        return "s3"
    return "local"


@pytest.fixture
def run_folder(tmp_path) -> Path:
    folder = small_run(tmp_path / "runs")
    assert folder.name == RUN_ID
    return folder
