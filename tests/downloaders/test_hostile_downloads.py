"""Downloads from a hostile source on loopback: redirects to other hosts, a
gzip bomb, and files larger than the source said."""

import gzip
import hashlib
import os

import pytest
from django.core.management import call_command

from common.models import Batch, DownloaderJob, JobState, OriginalFile
from common.storage import temporary_storage
from downloaders.fetch import fetch_url
from downloaders.files import download_files
from downloaders.transcriptome import download_transcriptome
from runner.pipeline import JobError
from tests.ensembl_fixtures import FUNGI
from tests.hostile_http import HostileServer

pytestmark = pytest.mark.django_db(transaction=True)

PATH = "/pub/release-1/sample.fa.gz"
PAYLOAD = os.urandom(200_000)
LEAK = "leaked-secret-7f3a"


@pytest.fixture
def source(settings, refinery_dirs):
    settings.REFINERY_HTTP_TIMEOUT_S = 2
    server = HostileServer().start()
    yield server
    server.stop()


@pytest.fixture
def other_host():
    server = HostileServer(host="127.0.0.2").start()
    server.answer(PATH, 200, PAYLOAD)
    yield server
    server.stop()


def download_job(url: str, task: str = "files", **expected) -> DownloaderJob:
    batch = Batch.objects.create(
        source="ensembl", accession="sample", pipeline_required="file_summary"
    )
    original = OriginalFile.objects.create(source_url=url, filename="sample.fa.gz", **expected)
    original.batches.add(batch)
    job = DownloaderJob.objects.create(downloader_task=task)
    job.batches.add(batch)
    job.mark_started("test", "1")
    return job


def run(job: DownloaderJob) -> DownloaderJob:
    (download_transcriptome if job.downloader_task == "transcriptome" else download_files)(job)
    job.refresh_from_db()
    return job


def sha256(data: bytes) -> dict:
    return {"sha256": hashlib.sha256(data).hexdigest()}


def written_by_fetch(url: str, tmp_path, **options) -> tuple[int, str]:
    """Fetch with fetch_url; the most bytes the staging file ever held, and the error."""
    destination = tmp_path / "staged"
    largest = 0

    def progress(_: int) -> None:
        nonlocal largest
        largest = max(largest, destination.stat().st_size)

    with pytest.raises(JobError) as error:
        fetch_url(url, destination, progress=progress, backoff_ms=10, **options)
    assert not destination.exists()
    return largest, error.value.reason


# --- redirects ----------------------------------------------------------------------------------


def test_a_redirect_to_another_host_is_refused(source, other_host):
    source.redirect(PATH, f"{other_host.url}{PATH}?{LEAK}")
    job = run(download_job(f"{source.url}{PATH}", expected_checksums=sha256(PAYLOAD)))
    assert job.state == JobState.FAILED and job.no_retry
    assert other_host.hits() == 0
    assert f"{source.url}{PATH}: redirected to 127.0.0.2" in job.failure_reason
    assert LEAK not in job.failure_reason
    assert not OriginalFile.objects.filter(is_downloaded=True).exists()


def test_a_redirect_to_a_link_local_address_is_refused(source, settings):
    # fe80::1 stands for 169.254.169.254: without a scope it is never reached, not even if
    # this test failed.
    settings.REFINERY_SOURCE_REDIRECT_HOSTS = ["fe80::1"]
    source.redirect(PATH, "http://[fe80::1]/latest/meta-data/iam/security-credentials/")
    job = run(download_job(f"{source.url}{PATH}"))
    assert job.state == JobState.FAILED and job.no_retry
    assert "redirected to fe80::1" in job.failure_reason
    assert "link-local" in job.failure_reason
    assert source.hits(PATH) == 1


def test_a_redirect_within_the_source_is_followed(source):
    source.redirect(PATH, "/mirror/sample.fa.gz")
    source.answer("/mirror/sample.fa.gz", 200, PAYLOAD)
    job = run(download_job(f"{source.url}{PATH}", expected_checksums=sha256(PAYLOAD)))
    assert job.state == JobState.SUCCEEDED, job.failure_reason
    assert OriginalFile.objects.get().size == len(PAYLOAD)


def test_an_error_reason_phrase_is_not_copied(source):
    source.answer(PATH, 404, LEAK.encode(), reason=LEAK)
    job = run(download_job(f"{source.url}{PATH}"))
    assert job.state == JobState.FAILED and job.no_retry
    assert "HTTP 404 Not Found" in job.failure_reason and LEAK not in job.failure_reason


# --- a gzip bomb --------------------------------------------------------------------------------


def bomb() -> bytes:
    """About 100 KB that a client decoding Content-Encoding would write as 100 MB."""
    return gzip.compress(b"\0" * 100_000_000, compresslevel=9)


def test_a_gzip_bomb_is_written_as_the_bytes_served(source):
    # The .gz file the source lists, served with `Content-Encoding: gzip` as many servers do:
    # its bytes are the file, never decoded.
    served = bomb()
    source.answer(PATH, 200, served, headers={"Content-Encoding": "gzip"})
    job = run(download_job(f"{source.url}{PATH}", expected_size=len(served),
                           expected_checksums=sha256(served)))  # fmt: skip
    assert job.state == JobState.SUCCEEDED, job.failure_reason
    original = OriginalFile.objects.get()
    assert original.size == len(served) and original.sha256 == sha256(served)["sha256"]
    assert source.requests_to(PATH)[0].headers.get("Accept-Encoding") == "identity"
    [key] = temporary_storage().list()
    assert key == original.temp_key


def test_a_gzip_bomb_writes_at_most_the_expected_size(source, tmp_path):
    source.answer(PATH, 200, bomb(), headers={"Content-Encoding": "gzip"})
    largest, reason = written_by_fetch(f"{source.url}{PATH}", tmp_path, expected_size=50_000)
    assert largest <= 50_000
    assert "more than the 50000 bytes expected" in reason


# --- sizes --------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_file_larger_than_expected_stops_at_the_expected_size(source, tmp_path, chunked):
    source.answer(PATH, 200, lambda: (b"x" * 65536 for _ in range(100)), chunked=chunked)
    largest, reason = written_by_fetch(f"{source.url}{PATH}", tmp_path, expected_size=100_000)
    assert largest <= 100_000
    assert f"{source.url}{PATH}: more than the 100000 bytes expected" in reason


def test_a_file_larger_than_expected_fails_the_job_without_retry(source):
    source.answer(PATH, 200, PAYLOAD)
    job = run(download_job(f"{source.url}{PATH}", expected_size=1000))
    assert job.state == JobState.FAILED and job.no_retry
    assert "more than the 1000 bytes expected" in job.failure_reason
    assert source.hits(PATH) == 1
    assert not list(temporary_storage().list())


def test_the_checksums_block_count_caps_a_download(source, tmp_path):
    # Ensembl's CHECKSUMS gives a file's sum and its size in 1024-byte blocks.
    source.answer(PATH, 200, lambda: (b"x" * 65536 for _ in range(100)), chunked=True)
    job = run(download_job(f"{source.url}{PATH}", task="transcriptome",
                           expected_checksums={"bsd_sum": "12345 98"}))  # fmt: skip
    assert job.state == JobState.FAILED and job.no_retry
    assert "more than the 100352 bytes expected" in job.failure_reason


def test_a_resumed_download_is_capped_too(source, tmp_path):
    # The first attempt ends early; the resumed one sends more than the rest of the file.
    source.answer(PATH, 200, lambda: [b"x" * 60_000], times=1)
    source.answer(PATH, 206, lambda: (b"y" * 65536 for _ in range(10)),
                  headers={"Content-Range": "bytes 60000-715359/715360"})  # fmt: skip
    largest, reason = written_by_fetch(f"{source.url}{PATH}", tmp_path, expected_size=100_000)
    assert largest <= 100_000
    assert "more than the 100000 bytes expected" in reason


def test_an_ftp_download_stops_at_the_expected_size(ensembl, tmp_path):
    call_command("survey", "ensembl", "--division", FUNGI, "--species", "refinery_demonstrans")
    for original in OriginalFile.objects.all():
        path = original.source_url.split("/ftp-genomes/", 1)[1]
        original.source_url = f"{ensembl.divisions_ftp_scheme_url}/{path}"
        original.expected_size = 1000
        original.save(update_fields=["source_url", "expected_size"])
    genome = OriginalFile.objects.get(raw_format="fasta.gz").source_url
    largest, reason = written_by_fetch(genome, tmp_path, expected_size=1000)
    assert largest <= 1000 and f"{genome}: more than the 1000 bytes expected" in reason
    job = DownloaderJob.objects.get()
    job.mark_started("test", "1")
    job = run(job)
    assert job.state == JobState.FAILED and job.no_retry
    assert "more than the 1000 bytes expected" in job.failure_reason
