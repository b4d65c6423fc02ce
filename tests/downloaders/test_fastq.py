"""The fastq downloader against an ENA-shaped server on loopback."""

import gzip

import pytest
from django.core.management import call_command

from common.models import Batch, BatchStatus, DownloaderJob, JobState, OriginalFile, ProcessorJob
from common.storage import temporary_storage
from downloaders.fastq import download_fastq
from tests.ena_fixtures import with_index

pytestmark = pytest.mark.django_db(transaction=True)


def surveyed(run: str) -> DownloaderJob:
    with_index()
    call_command("survey", "ena", "--run", run)
    job = DownloaderJob.objects.get(batches__accession=run)
    job.mark_started("test", "1")
    return job


def run(job) -> DownloaderJob:
    download_fastq(job)
    job.refresh_from_db()
    return job


def test_a_paired_run_is_fetched_checked_and_stored(ena):
    job = run(surveyed("SRR900003"))
    assert job.state == JobState.SUCCEEDED
    served = dict(ena.runs[2].files)
    for original in OriginalFile.objects.filter(batches__accession="SRR900003"):
        assert original.is_downloaded and original.size == len(served[original.filename])
        with temporary_storage().open(original.temp_key) as handle:
            assert handle.read() == served[original.filename]
    assert Batch.objects.get(accession="SRR900003").status == BatchStatus.DOWNLOADED
    processor = ProcessorJob.objects.get(pipeline="salmon_quant")
    assert processor.state == JobState.QUEUED and processor.batches.get().accession == "SRR900003"


def test_a_file_failing_its_md5_once_is_fetched_again(ena):
    ena.corrupt("SRR900001.fastq.gz", times=1)
    job = run(surveyed("SRR900001"))
    assert job.state == JobState.SUCCEEDED
    path = "/ftp/vol1/fastq/SRR900/001/SRR900001/SRR900001.fastq.gz"
    assert ena.requests.count(path) == 2


def test_a_file_failing_its_md5_twice_fails_the_job(ena):
    ena.corrupt("SRR900001.fastq.gz", times=2)
    job = run(surveyed("SRR900001"))
    assert job.state == JobState.FAILED
    expected = OriginalFile.objects.get().expected_checksums["md5"]
    assert f"SRR900001.fastq.gz: MD5 mismatch twice: ENA lists {expected}" in job.failure_reason
    assert not OriginalFile.objects.filter(is_downloaded=True).exists()
    assert not list(temporary_storage().list())


def test_a_file_of_another_size_fails(ena):
    job = surveyed("SRR900002")
    OriginalFile.objects.update(expected_size=10)
    job = run(job)
    assert job.state == JobState.FAILED and "SRR900002.fastq.gz" in job.failure_reason


def test_a_damaged_gzip_with_a_matching_md5_fails_clearly(ena):
    from hashlib import md5

    broken = gzip.compress(b"@r\nACGT\n+\nIIII\n" * 100)[:-20]
    ena.runs[1].files = [("SRR900002.fastq.gz", broken)]
    job = run(surveyed("SRR900002"))
    assert OriginalFile.objects.get().expected_checksums["md5"] == md5(broken).hexdigest()
    assert job.state == JobState.FAILED
    assert "SRR900002.fastq.gz is not a complete gzip file (truncated)" in job.failure_reason


def test_a_quantification_waits_for_its_index_and_the_foreman_sends_it_then(ena):
    from foreman.passes import Foreman

    call_command("survey", "ena", "--run", "SRR900001", "--ensembl-division", "EnsemblFungi")
    job = DownloaderJob.objects.get(downloader_task="fastq")
    job.mark_started("test", "1")
    assert run(job).state == JobState.SUCCEEDED
    quant = ProcessorJob.objects.get(pipeline="salmon_quant")
    assert quant.state == JobState.CREATED  # not sent: the organism has no index yet
    report = Foreman(outbox_grace_s=0).run_pass()
    quant.refresh_from_db()
    assert quant.state == JobState.CREATED and report["processor waiting"] == 1
    with_index()
    Foreman(outbox_grace_s=0).run_pass()
    quant.refresh_from_db()
    assert quant.state == JobState.QUEUED
