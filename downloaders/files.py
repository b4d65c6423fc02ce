"""The `files` downloader task: fetch each file at its URL, checking the size
and SHA-256 the surveyor found, if it found them."""

from __future__ import annotations

from pathlib import Path

from common.models import OriginalFile
from common.storage import sha256_of_file
from downloaders.utils import DownloaderJobError, run_downloader


def verify_sha256(original: OriginalFile, path: Path) -> None:
    expected = original.expected_checksums.get("sha256")
    if expected and sha256_of_file(path) != expected:
        raise DownloaderJobError(
            f"{original.filename}: SHA-256 does not match the source's ({expected})"
        )


def download_files(job_id: int) -> bool:
    return run_downloader(job_id, verify=verify_sha256)
