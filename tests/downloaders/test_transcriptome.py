"""The transcriptome downloader against an Ensembl-shaped server on loopback."""

import pytest
from django.core.management import call_command

from common.models import (
    Batch,
    BatchStatus,
    DownloaderJob,
    JobState,
    OriginalFile,
    ProcessorJob,
)
from common.storage import temporary_storage
from downloaders.transcriptome import download_transcriptome
from tests.ensembl_fixtures import FUNGI

pytestmark = pytest.mark.django_db(transaction=True)
GENOME = "Refinery_demonstrans.Demo1.0.dna.toplevel.fa.gz"
GTF = "Refinery_demonstrans.Demo1.0.61.gtf.gz"


@pytest.fixture
def downloader_job(ensembl):
    call_command("survey", "ensembl", "--division", FUNGI, "--species", "refinery_demonstrans")
    job = DownloaderJob.objects.get()
    job.mark_started("test", "1")
    return job


def run(job) -> DownloaderJob:
    download_transcriptome(job)
    job.refresh_from_db()
    return job


def stored_keys() -> list[str]:
    return list(temporary_storage().list())


def test_one_download_serves_both_batches(ensembl, downloader_job):
    job = run(downloader_job)
    assert job.state == JobState.SUCCEEDED
    assert ensembl.request_count(GENOME) == 1 and ensembl.request_count(GTF) == 1
    assert len(stored_keys()) == 2  # one stored copy of each file
    for original in OriginalFile.objects.all():
        assert original.is_downloaded and original.size > 0 and len(original.sha256) == 64
        assert temporary_storage().exists(original.temp_key)
    assert set(Batch.objects.values_list("status", flat=True)) == {BatchStatus.DOWNLOADED}
    processors = ProcessorJob.objects.order_by("pipeline")
    assert [p.pipeline for p in processors] == [
        "transcriptome_index_long", "transcriptome_index_short",
    ]  # fmt: skip
    assert all(p.state == JobState.QUEUED and p.batches.count() == 1 for p in processors)


def test_a_retried_download_does_not_fetch_stored_files_again(ensembl, downloader_job):
    ensembl.fail_path(GTF, status=404)
    assert run(downloader_job).state == JobState.FAILED
    ensembl.clear_faults()
    retry = downloader_job.create_retry()
    retry.mark_started("test", "1")
    assert run(retry).state == JobState.SUCCEEDED
    assert ensembl.request_count(GENOME, statuses=(200,)) == 1
    assert ProcessorJob.objects.count() == 2


def test_ftp_urls_work_too(ensembl, downloader_job):
    for original in OriginalFile.objects.all():
        path = original.source_url.split("/ftp-genomes/", 1)[1]
        original.source_url = f"{ensembl.divisions_ftp_scheme_url}/{path}"
        original.save(update_fields=["source_url"])
    assert run(downloader_job).state == JobState.SUCCEEDED
    assert ensembl.request_count(GENOME, method="RETR", protocol="ftp") == 1


def test_a_404_fails_at_once_without_retry(ensembl, downloader_job):
    ensembl.fail_path(GENOME, status=404)
    job = run(downloader_job)
    assert job.state == JobState.FAILED and job.no_retry
    assert GENOME in job.failure_reason and "HTTP 404" in job.failure_reason
    assert ensembl.request_count(GENOME) == 1
    assert not ProcessorJob.objects.exists()


@pytest.mark.same_on_every_database  # waits out the HTTP backoff; nothing database-specific
def test_a_500_is_retried_then_fails_with_url_and_status(ensembl, downloader_job):
    ensembl.fail_path(GTF, status=500)
    job = run(downloader_job)
    assert job.state == JobState.FAILED and not job.no_retry
    assert GTF in job.failure_reason and "HTTP 500" in job.failure_reason
    assert "gave up after 4 attempts" in job.failure_reason
    assert ensembl.request_count(GTF) == 4
    assert not ProcessorJob.objects.exists()


@pytest.mark.same_on_every_database  # waits out the HTTP backoff; nothing database-specific
def test_a_timeout_is_retried(ensembl, downloader_job, caplog):
    ensembl.delay(GENOME, 5, times=1)  # the timeout is 2 s
    assert run(downloader_job).state == JobState.SUCCEEDED
    assert "timed out after 2 s; retrying" in caplog.text


def test_a_dropped_connection_resumes_where_it_stopped(tmp_path, settings, refinery_dirs):
    from demo.ensembl_server import ServedGenome
    from demo.organism import generate_organism
    from tests.ensembl_fixtures import serve

    big = generate_organism(tmp_path / "big", n_genes=600, seed=3)
    server = serve(tmp_path, settings, [ServedGenome.from_organism(big, division=FUNGI)])
    try:
        call_command("survey", "ensembl", "--division", FUNGI)
        job = DownloaderJob.objects.get()
        job.mark_started("test", "1")
        server.truncate(GENOME, 300_000, times=1)
        assert run(job).state == JobState.SUCCEEDED
        [first, resumed] = [r for r in server.requests if r.path.endswith(GENOME)]
        assert first.range is None
        start = int(resumed.range.removeprefix("bytes=").rstrip("-"))
        assert 200_000 < start <= 300_000  # only the bytes not yet received, once more
    finally:
        server.stop()


def test_a_checksum_mismatch_fails_and_stores_nothing(ensembl, downloader_job):
    ensembl.corrupt_checksum(GENOME)
    # The surveyor read the corrupted CHECKSUMS: survey again on a fresh database.
    # (A wrong sum with the right block count: the block count also caps the download.)
    for original in OriginalFile.objects.all():
        blocks = original.expected_checksums["bsd_sum"].split()[1]
        original.expected_checksums = {"bsd_sum": f"1 {blocks}"}
        original.save(update_fields=["expected_checksums"])
    job = run(downloader_job)
    assert job.state == JobState.FAILED
    assert "checksum mismatch" in job.failure_reason and "says 1 " in job.failure_reason
    assert not OriginalFile.objects.filter(filename=GENOME, is_downloaded=True).exists()
    assert not any(key.endswith(GENOME) for key in stored_keys())


def test_a_truncated_gzip_fails_clearly(ensembl, downloader_job):
    OriginalFile.objects.update(expected_checksums={})  # as when a folder has no CHECKSUMS
    ensembl.truncate(GENOME, 4000, mode="gzip")
    job = run(downloader_job)
    assert job.state == JobState.FAILED
    assert f"{GENOME} is not a complete gzip file (truncated)" in job.failure_reason
    assert not any(key.endswith(GENOME) for key in stored_keys())
