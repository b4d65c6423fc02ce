"""The `fastq` downloader task: a run's FASTQ files from ENA over HTTPS (resumed
by `fetch.py`), each checked against the size and MD5 ENA lists for it and read
through to the end as gzip. A file whose MD5 does not match is fetched once
more from scratch; a second mismatch fails the job with the reason."""

from __future__ import annotations

import hashlib

from common.chunks import CHUNK
from common.models import DownloaderJob
from downloaders.steps import DownloaderContext, fetch_file, run_downloader
from downloaders.transcriptome import verify_gzip
from runner.pipeline import JobError


def md5_of(path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_md5(context: DownloaderContext) -> DownloaderContext:
    original = context["original"]
    expected = original.expected_checksums.get("md5")
    if not expected:
        raise JobError(f"{original.filename}: ENA listed no MD5 for it", no_retry=True)
    observed = md5_of(context["staged"])
    if observed == expected:
        return context
    print(f"{original.filename}: MD5 {observed}, ENA lists {expected}: fetching it again")
    context["staged"].unlink(missing_ok=True)
    context = fetch_file(context)
    observed = md5_of(context["staged"])
    if observed != expected:
        raise JobError(
            f"{original.filename}: MD5 mismatch twice: ENA lists {expected}, the downloaded "
            f"file has {observed} ({original.source_url})"
        )
    return context


def download_fastq(job: DownloaderJob) -> DownloaderContext:
    return run_downloader(job, checks=[verify_md5, verify_gzip])
