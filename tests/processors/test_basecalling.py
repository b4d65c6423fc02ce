"""The basecalling pipeline, from a MinKNOW run folder to one gzip FASTQ per pod5
file with its provenance.

Dorado cannot be installed here (it is a download from its maker, and needs a
GPU), so these tests run a stand-in (tests/processors/standins/dorado) that
follows Dorado's command line (`dorado basecaller <model> <data> --emit-fastq`,
`dorado --version` on standard error), writes FASTQ with Dorado's header tags
and log lines, and reads the real pod5 input with the `pod5` package. It fails
as Dorado does when CUDA runs out of memory and when a model is missing. The
pod5 files are real (written by the `pod5` package, synthetic signal); the bases
are made up.
"""

from __future__ import annotations

import gzip
import io
from collections import Counter

import pytest

from common.models import (
    Batch,
    ComputedFile,
    DownloaderJob,
    JobState,
    OriginalFile,
    ProcessorJob,
    RunState,
    SequencingRun,
)
from common.storage import permanent_storage
from demo.nanopore_run import add_pod5, finish_run, make_nanopore_run, new_run
from foreman.heartbeat import record_beat
from foreman.passes import Foreman
from processors.basecalling import bam
from processors.basecalling.reads import fastq_records
from runner.nomad.worker_classes import parent_for
from runner.registry import work_for
from tests.attacks import run_queued_jobs
from tests.nanopore import install_dorado_standin, survey_nanopore

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def dorado(tmp_path, settings, monkeypatch):
    """The Dorado stand-in as REFINERY_DORADO, with no failure asked for."""
    for name in ("OOM_ONCE", "FILTER_EVERY", "LOSE_EVERY", "CALLS"):
        monkeypatch.delenv(f"DORADO_STANDIN_{name}", raising=False)
    settings.REFINERY_DORADO = str(install_dorado_standin(tmp_path / "bin"))
    settings.REFINERY_DORADO_MODEL = "hac"
    return settings.REFINERY_DORADO


def downloaded_run(tmp_path, files: int = 3, reads: int = 4, batch_files: int = 2):
    """A finished run, surveyed and downloaded: its basecalling jobs are queued."""
    from django.conf import settings  # the test's, as the `settings` fixture changed it

    settings.REFINERY_POD5_BATCH_FILES = batch_files
    run = make_nanopore_run(tmp_path / "minknow", files=files, reads=reads)
    survey_nanopore(tmp_path / "minknow")
    for job in DownloaderJob.objects.filter(state=JobState.QUEUED):
        assert job.mark_started("test-worker", "test")
        work_for(job)(job)
        job.refresh_from_db()
        assert job.state == JobState.SUCCEEDED, job.failure_reason
    return run


def fastq_of(result: ComputedFile) -> list:
    with permanent_storage().open(result.key) as stream:
        data = gzip.decompress(stream.read())
    return list(fastq_records(io.BytesIO(data), result.filename))


def test_a_run_is_surveyed_downloaded_and_basecalled_into_one_fastq_per_pod5(
    tmp_path, refinery_dirs, dorado
):
    run = downloaded_run(tmp_path, files=3, reads=4, batch_files=2)
    jobs = run_queued_jobs()
    assert [(j.pipeline, j.state) for j in jobs] == [("basecalling", JobState.SUCCEEDED)] * 2

    recorded = SequencingRun.objects.get()
    assert recorded.state == RunState.BASECALLED
    assert list(recorded.history.values_list("new_state", flat=True)) == [
        "sequencing",
        "complete",
        "basecalling",
        "basecalled",
    ]
    results = {r.filename: r for r in ComputedFile.objects.all()}
    assert sorted(results) == sorted(p.name.replace(".pod5", ".fastq.gz") for p in run.pod5_files)
    for pod5_path in run.pod5_files:
        records = fastq_of(results[pod5_path.name.replace(".pod5", ".fastq.gz")])
        assert [r.read_id for r in records] == run.read_ids[pod5_path.name]
        for record in records:
            tags = record.tags()
            assert tags["fn"] == pod5_path.name
            assert tags["RG"].endswith("_dna_r10.4.1_e8.2_400bps_hac@v5.0.0")

    first = Batch.objects.get(variant="1")
    provenance = ComputedFile.objects.filter(batches=first).first().provenance
    assert provenance.tools == {"dorado": "0.9.6+0949eb8"}
    assert provenance.commands[0][1:3] == ["basecaller", "hac"]
    assert provenance.commands[0][-1] == "--emit-fastq"
    parameters = provenance.parameters
    assert parameters["model"] == "hac"
    assert parameters["models_reported"] == ["dna_r10.4.1_e8.2_400bps_hac@v5.0.0"]
    assert (parameters["reads_in"], parameters["reads_called"]) == (8, 8)
    assert parameters["reads_filtered"] == 0
    assert parameters["total_bases"] == sum(
        len(r.sequence) for f in ComputedFile.objects.filter(batches=first) for r in fastq_of(f)
    )
    assert 5 < parameters["mean_qscore"] < 30
    inputs = {i["filename"]: i["sha256"] for i in provenance.inputs}
    assert inputs == {f.filename: f.sha256 for f in first.original_files.all()}
    assert all(len(sha) == 64 for sha in inputs.values())
    # Inputs no other job needs left temporary storage.
    assert not OriginalFile.objects.filter(is_downloaded=True).exists()


def test_reads_dorado_filtered_are_accounted_for_and_lost_ones_fail_the_job(
    tmp_path, refinery_dirs, dorado, monkeypatch
):
    downloaded_run(tmp_path, files=2, reads=5, batch_files=1)
    monkeypatch.setenv("DORADO_STANDIN_FILTER_EVERY", "3")
    first = ProcessorJob.objects.order_by("id").first()
    assert first.mark_started("test-worker", "test")
    work_for(first)(first)
    first.refresh_from_db()
    assert first.state == JobState.SUCCEEDED, first.failure_reason
    parameters = first.provenance.parameters
    assert (parameters["reads_in"], parameters["reads_called"]) == (5, 4)
    assert parameters["reads_filtered"] == 1
    assert parameters["dorado_reported"] == {"basecalled": 4, "filtered": 1}

    monkeypatch.delenv("DORADO_STANDIN_FILTER_EVERY")
    monkeypatch.setenv("DORADO_STANDIN_LOSE_EVERY", "2")  # a basecaller that drops reads
    second = ProcessorJob.objects.order_by("id").last()
    assert second.mark_started("test-worker", "test")
    work_for(second)(second)
    second.refresh_from_db()
    assert second.state == JobState.FAILED
    assert "2 read(s) of the input have no basecall and the basecaller reported 0 filtered" in (
        second.failure_reason
    )
    assert not second.computed_files.exists()


def test_cuda_out_of_memory_is_retried_one_step_up_the_gpu_memory_ladder(
    tmp_path, refinery_dirs, dorado, monkeypatch, settings
):
    downloaded_run(tmp_path, files=1, reads=3)
    monkeypatch.setenv("DORADO_STANDIN_OOM_ONCE", str(tmp_path / "oom-happened"))
    (first,) = run_queued_jobs()
    assert first.state == JobState.FAILED and not first.no_retry
    assert "Dorado ran out of GPU memory (CUDA out of memory)" in first.failure_reason
    assert "was killed by signal 6" in first.failure_reason
    assert first.ram_mb == 1024

    Foreman(outbox_grace_s=0).run_pass()
    retry = ProcessorJob.objects.get(retried_job=first)
    ladder = settings.REFINERY_RAM_LADDERS_MB["processor"]["basecalling"]
    assert retry.ram_mb == ladder[0] and retry.num_retries == 1
    assert retry.state == JobState.QUEUED
    assert parent_for(retry) == f"REFINERY_PROCESSOR_GPU_{ladder[0]}"
    assert parent_for(first) == "REFINERY_PROCESSOR_GPU_1024"

    (done,) = run_queued_jobs()
    assert done.pk == retry.pk and done.state == JobState.SUCCEEDED
    assert SequencingRun.objects.get().state == RunState.BASECALLED


def test_a_missing_model_fails_for_good_with_the_reason_and_the_run_fails(
    tmp_path, refinery_dirs, dorado, settings
):
    downloaded_run(tmp_path, files=1, reads=2)
    settings.REFINERY_DORADO_MODEL = str(tmp_path / "models" / "dna_r10.4.1_e8.2_400bps_hac@v9")
    (job,) = run_queued_jobs()
    assert job.state == JobState.FAILED and job.no_retry
    assert "Dorado cannot find its model" in job.failure_reason
    assert "Model path does not exist at:" in job.failure_reason
    Foreman(outbox_grace_s=0).run_pass()
    job.refresh_from_db()
    assert job.given_up_at is not None and not job.retried
    run = SequencingRun.objects.get()
    assert run.state == RunState.FAILED
    assert "Dorado cannot find its model" in run.state_reason


def test_a_worker_takes_basecalling_jobs_only_where_dorado_is_installed(
    tmp_path, refinery_dirs, dorado, manage, start_manage
):
    downloaded_run(tmp_path, files=1, reads=2)
    (job,) = ProcessorJob.objects.all()
    assert job.state == JobState.QUEUED

    without = manage("worker", "--until-idle", env={"REFINERY_DORADO": "no-such-dorado"})
    assert (
        "leaves basecalling jobs queued for others: Dorado is not installed here "
        "(REFINERY_DORADO='no-such-dorado' is not found on PATH)"
    ) in without.stdout
    job.refresh_from_db()
    assert job.state == JobState.QUEUED
    record_beat("foreman-host:1", 0.1, Counter())  # a live Foreman: `jobs status` exits 0
    status = manage("jobs", "status", env={"REFINERY_DORADO": "no-such-dorado"})
    assert (
        "1 queued basecalling job(s) wait for a GPU worker with Dorado (REFINERY_DORADO) or a "
        "basecalling engine; not this machine: Dorado is not installed here"
    ) in status.stdout

    with_dorado = manage("worker", "--until-idle", env={"REFINERY_DORADO": dorado})
    assert "takes basecalling jobs" in with_dorado.stdout
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED, job.failure_reason
    assert SequencingRun.objects.get().state == RunState.BASECALLED


def test_a_run_basecalled_before_it_completes_is_basecalled_when_it_completes(
    tmp_path, refinery_dirs, dorado, settings
):
    """The last batch may be done before the final summary appears: the survey
    that sees the summary moves the run on."""
    settings.REFINERY_POD5_BATCH_FILES = 1
    run = new_run(tmp_path / "minknow")
    add_pod5(run)
    survey_nanopore(tmp_path / "minknow")
    survey_nanopore(tmp_path / "minknow")  # the file's size is steady now: batched
    jobs = run_queued_jobs()
    assert [j.state for j in jobs] == [JobState.SUCCEEDED] * 2
    recorded = SequencingRun.objects.get()
    assert recorded.state == RunState.BASECALLING, "not complete yet"
    finish_run(run)
    survey_nanopore(tmp_path / "minknow")
    recorded.refresh_from_db()
    assert recorded.state == RunState.BASECALLED
    assert recorded.metadata["complete"] is True


def test_bam_output_is_one_unaligned_bam_per_pod5_file(tmp_path, refinery_dirs, dorado, settings):
    """REFINERY_DORADO_OUTPUT=bam: Dorado runs without --emit-fastq and writes
    unaligned BAM (the stand-in writes it as Dorado does: BGZF, an @RG header line,
    the same tags); it is split into one BAM per pod5 file and checked the same way."""
    settings.REFINERY_DORADO_OUTPUT = "bam"
    run = downloaded_run(tmp_path, files=2, reads=3, batch_files=2)
    (job,) = run_queued_jobs()
    assert job.state == JobState.SUCCEEDED, job.failure_reason
    provenance = job.provenance
    assert "--emit-fastq" not in provenance.commands[0]
    assert provenance.parameters["output"] == "bam"
    assert provenance.parameters["reads_called"] == 6
    for result in ComputedFile.objects.all():
        assert result.format == "bam" and result.filename.endswith(".bam")
        local = tmp_path / result.filename
        with permanent_storage().open(result.key) as stream:
            local.write_bytes(stream.read())
        assert local.read_bytes().endswith(bam.BGZF_EOF)
        records, header = bam.open_bam(local)
        with records:
            read_ids = [r.read_id for r in bam.bam_records(records)]
        assert b"@RG\tID:" in header and b"PN:dorado" in header
        assert read_ids == run.read_ids[result.filename.replace(".bam", ".pod5")]
    assert SequencingRun.objects.get().state == RunState.BASECALLED


def test_the_whole_path_with_s3_storage(tmp_path, s3_storage, dorado):
    """The same path with temporary and permanent storage on the S3 server."""
    run = downloaded_run(tmp_path, files=2, reads=3, batch_files=2)
    assert all(f.temp_key for f in OriginalFile.objects.all())
    (job,) = run_queued_jobs()
    assert job.state == JobState.SUCCEEDED, job.failure_reason
    results = {r.filename: r for r in ComputedFile.objects.all()}
    for pod5_path in run.pod5_files:
        records = fastq_of(results[pod5_path.name.replace(".pod5", ".fastq.gz")])
        assert [r.read_id for r in records] == run.read_ids[pod5_path.name]
    assert SequencingRun.objects.get().state == RunState.BASECALLED
