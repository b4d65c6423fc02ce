"""Sequencing runs for the API, admin and webhook tests: rows made directly (the
surveys and archive jobs that make them in production are other modules'), with
their states moved the way production moves them (`move_to`, and the jobs' own
transitions)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from common.models import (
    Batch,
    ComputedFile,
    DownloaderJob,
    ProcessorJob,
    Provenance,
    SequencingRun,
)

NOVASEQ_RUN = "230101_A01234_0042_AHXXXXXXX"
MISEQ_RUN = "230215_M05678_0007_000000000-ABCDE"
NANOPORE_RUN = "0a1b2c3d-pak00001-run"


def illumina_run(run_id: str, **fields) -> SequencingRun:
    instrument_id = run_id.split("_")[1]
    return SequencingRun.objects.create(
        platform="illumina",
        run_id=run_id,
        instrument_id=instrument_id,
        location=f"/runs/{run_id}",
        **fields,
    )


def archived_run() -> dict:
    """A NovaSeq 6000 run surveyed, archived on the second attempt of its download,
    with its archive and fastq batches."""
    run = illumina_run(
        NOVASEQ_RUN,
        flowcell="HXXXXXXX",
        instrument_type="NovaSeq 6000",
        run_number=42,
        run_date=datetime(2023, 1, 1, tzinfo=UTC),
        lanes=2,
        read_structure=[{"number": 1, "cycles": 151, "is_index": False}],
    )
    run.move_to("complete", "CopyComplete.txt older than the grace period")
    archive = Batch.objects.create(
        source="illumina_runs", accession=run.run_id, variant="archive",
        pipeline_required="illumina_run_archive", sequencing_run=run,
    )  # fmt: skip
    fastq = Batch.objects.create(
        source="illumina_runs", accession=run.run_id, variant="fastq",
        pipeline_required="bcl2fastq", sequencing_run=run,
    )  # fmt: skip
    first = DownloaderJob.objects.create(downloader_task="illumina_run")
    first.batches.add(archive, fastq)
    first.mark_started("host:1", "1.0")  # the run moves to archiving
    first.mark_failed("RunInfo.xml changed while it was read")
    download = first.create_retry()
    download.mark_started("host:2", "1.0")
    download.mark_succeeded()
    process = ProcessorJob.objects.create(pipeline="illumina_run_archive")
    process.batches.add(archive)
    process.mark_started("host:3", "1.0")
    provenance = Provenance.objects.create(
        processor_job=process, processor_name="illumina_run_archive", processor_version="1",
        started_at=timezone.now(), ended_at=timezone.now(),
    )  # fmt: skip
    computed = ComputedFile.objects.create(
        key=f"processor/{process.pk}/{run.run_id}.tar.zst", filename=f"{run.run_id}.tar.zst",
        format="tar.zst", size=123456, sha256="ab" * 32, processor_job=process,
        provenance=provenance,
    )  # fmt: skip
    computed.batches.add(archive)
    process.mark_succeeded()  # the run moves to archived
    run.refresh_state()
    return {"run": run, "first": first, "download": download, "process": process,
            "archive": computed, "archive_batch": archive, "fastq_batch": fastq}  # fmt: skip


@pytest.fixture
def runs(db, refinery_dirs):
    """Three runs: an archived NovaSeq run (state changed two days ago), a MiSeq run
    its instrument reported failed, and a Nanopore run still sequencing."""
    made = archived_run()
    miseq = illumina_run(
        MISEQ_RUN, flowcell="000000000-ABCDE", instrument_type="MiSeq",
        run_date=datetime(2023, 2, 15, tzinfo=UTC),
    )  # fmt: skip
    miseq.move_to("complete", "RTAComplete.txt")
    miseq.move_to("failed", "the instrument reported the run failed: RunCompletionStatus Error")
    nanopore = SequencingRun.objects.create(
        platform="nanopore", run_id=NANOPORE_RUN, flowcell="PAK00001",
        instrument_id="MN12345", instrument_type="MinION", location="/data/pak00001",
    )  # fmt: skip
    two_days_ago = timezone.now() - timedelta(days=2)
    SequencingRun.objects.filter(pk=made["run"].pk).update(state_changed_at=two_days_ago)
    return {**made, "miseq": miseq, "nanopore": nanopore}
