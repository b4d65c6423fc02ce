"""The `files` downloader task: fetch each file at its URL, checking the size
and SHA-256 the surveyor found, if it found them."""

from __future__ import annotations

from common.models import DownloaderJob
from common.storage import sha256_of_file
from downloaders.steps import DownloaderContext, run_downloader
from runner.pipeline import JobError


def verify_sha256(context: DownloaderContext) -> DownloaderContext:
    original = context["original"]
    expected = original.expected_checksums.get("sha256")
    if expected and sha256_of_file(context["staged"]) != expected:
        raise JobError(f"{original.filename}: SHA-256 does not match the source's ({expected})")
    return context


def download_files(job: DownloaderJob) -> DownloaderContext:
    return run_downloader(job, checks=[verify_sha256])
