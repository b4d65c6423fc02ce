"""The bcl2fastq pipeline from a surveyed run folder holding real base calls
(Picard's 25T8B25T test data, tests/data/illumina) to demultiplexed FASTQ in
storage, the figures per sample in the database and the run `demultiplexed`:
with the built-in converter, and with stand-ins for BCL Convert and bcl2fastq
(tests/processors/standins: neither can be installed here; they follow the
real tools' command lines and output layouts). S3 (moto) on PostgreSQL, local
folders on SQLite."""

from __future__ import annotations

import gzip
import io
import os
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from common.models import (
    ComputedFile,
    DemultiplexStat,
    DownloaderJob,
    JobState,
    ProcessorJob,
    SequencingRun,
)
from common.storage import permanent_storage
from demo.picard_run import picard_barcodes, write_picard_run
from runner.lifecycle import execute_job, start_here
from runner.registry import wait_reason
from tests.illumina_archive.test_archive_jobs import run_downloader

pytestmark = pytest.mark.django_db(transaction=True)

STANDINS = Path(__file__).resolve().parents[1] / "processors" / "standins"
PROJECT = Path(__file__).resolve().parents[2]


def run_here(job: ProcessorJob) -> ProcessorJob:
    assert start_here(job)
    execute_job(job)
    job.refresh_from_db()
    return job


def surveyed_and_archived(tmp_path, settings, **sheet) -> ProcessorJob:
    """The run surveyed, downloaded and archived: its bcl2fastq job, ready."""
    settings.REFINERY_ILLUMINA_GRACE_S = 0
    write_picard_run(tmp_path / "share", **sheet)
    call_command("survey", "illumina_runs", str(tmp_path / "share"), stdout=io.StringIO())
    [downloader] = DownloaderJob.objects.all()
    assert run_downloader(downloader).state == JobState.SUCCEEDED, downloader.failure_reason
    demultiplexer = ProcessorJob.objects.get(pipeline="bcl2fastq")
    assert demultiplexer.state == JobState.CREATED, "it is not sent before the archive is verified"
    assert "archive to be verified (the run is archiving)" in wait_reason(demultiplexer)
    archiver = ProcessorJob.objects.get(pipeline="illumina_run_archive")
    assert run_here(archiver).state == JobState.SUCCEEDED, archiver.failure_reason
    assert wait_reason(demultiplexer) == ""
    return demultiplexer


def fastq_reads(computed: ComputedFile) -> int:
    with permanent_storage().open(computed.key) as stream:
        return gzip.decompress(stream.read()).count(b"\n") // 4


@pytest.fixture
def engines_on_path(monkeypatch, tmp_path):
    """The stand-ins found on the PATH as `bcl-convert` and `bcl2fastq`, as the
    real tools would be (run with this interpreter, which has the converter's
    packages)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bcl-convert", "bcl2fastq"):
        path = bin_dir / tool
        path.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{STANDINS / tool}" "$@"\n')
        path.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("REFINERY_PROJECT", str(PROJECT))


@pytest.mark.parametrize("engine", ["builtin", "bcl-convert", "bcl2fastq"])
def test_each_engine_gives_fastq_figures_and_a_demultiplexed_run(
    engine, storage_kind, tmp_path, settings, engines_on_path
):
    settings.REFINERY_BCL_ENGINE = engine
    job = run_here(surveyed_and_archived(tmp_path, settings))
    assert job.state == JobState.SUCCEEDED, job.failure_reason

    run = SequencingRun.objects.get()
    assert run.state == "demultiplexed"
    assert list(run.history.values_list("new_state", flat=True))[-3:] == [
        "archived", "demultiplexing", "demultiplexed",
    ]  # fmt: skip
    fastqs = ComputedFile.objects.filter(processor_job=job, format="fastq.gz")
    names = set(fastqs.values_list("filename", flat=True))
    assert "Undetermined_S0_L001_R1_001.fastq.gz" in names
    assert "S1_S1_L001_R2_001.fastq.gz" in names
    stats = list(DemultiplexStat.objects.filter(run=run))
    by_sample = {row.sample_id: row for row in stats}
    assert "Undetermined" in by_sample and len(stats) == len(picard_barcodes()) + 1
    # The figures count what the FASTQs hold (pass-filter clusters only).
    r1 = [f for f in fastqs if "_R1_" in f.filename]
    assert sum(row.reads for row in stats) == sum(fastq_reads(f) for f in r1) > 0
    assert all(row.yield_bases >= 0 for row in stats)
    provenance = job.provenance
    assert provenance.parameters["engine"] == engine
    assert len(provenance.parameters["sample_sheet_sha256"]) == 64
    archive = next(i for i in provenance.inputs if i["filename"].endswith(".tar.zst"))
    assert len(archive["sha256"]) == 64
    if engine == "builtin":
        assert provenance.parameters["i5_orientation"] and provenance.commands == []
    else:
        [command] = provenance.commands
        assert command[0] == engine and "--sample-sheet" in command
        assert provenance.tools[engine].startswith(("bcl-convert Version", "bcl2fastq v2.20"))


def test_a_sample_sheet_the_converter_refuses_fails_for_good_naming_the_line(
    storage_kind, tmp_path, settings
):
    settings.REFINERY_BCL_ENGINE = "builtin"
    rows = ["S1,ACGTACGT,demo", "S1,ACGTTTTT,demo"]  # the same Sample_ID twice
    job = run_here(surveyed_and_archived(tmp_path, settings, sheet_rows=rows))
    assert job.state == JobState.FAILED and job.no_retry
    assert "SampleSheet.csv: line" in job.failure_reason, job.failure_reason
    assert not ComputedFile.objects.filter(processor_job=job).exists()
    assert not DemultiplexStat.objects.exists()


def test_an_engine_named_but_not_installed_fails_saying_so(storage_kind, tmp_path, settings):
    settings.REFINERY_BCL_ENGINE = "bcl-convert"
    job = run_here(surveyed_and_archived(tmp_path, settings))
    assert job.state == JobState.FAILED
    assert "bcl-convert, which is not installed" in job.failure_reason


def test_an_engine_that_fails_fails_the_job_with_its_message(
    storage_kind, tmp_path, settings, engines_on_path, monkeypatch
):
    settings.REFINERY_BCL_ENGINE = "bcl-convert"
    monkeypatch.setenv("BCL_CONVERT_STANDIN_FAIL", "Sample sheet has an invalid header")
    job = run_here(surveyed_and_archived(tmp_path, settings))
    assert job.state == JobState.FAILED
    assert "bcl-convert exited with code 1" in job.failure_reason
    assert "invalid header" in job.failure_reason
