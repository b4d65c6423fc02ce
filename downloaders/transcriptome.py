"""The `transcriptome` downloader task: an organism's genome FASTA and GTF from
Ensembl, fetched once for both of its transcriptome index batches.

Each file is checked against the BSD sum Ensembl publishes in the folder's
CHECKSUMS, and read through to the end as gzip, so a damaged file never reaches
a processor."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

from common.bsd_sum import bsd_sum_path
from common.models import OriginalFile
from downloaders.utils import DownloaderJobError, run_downloader

CHUNK = 1024 * 1024


def verify_bsd_sum(original: OriginalFile, path: Path) -> None:
    expected = original.expected_checksums.get("bsd_sum")
    if not expected:
        return
    checksum, blocks = bsd_sum_path(path)
    observed = f"{checksum} {blocks}"
    if [checksum, blocks] != [int(x) for x in expected.split()]:
        raise DownloaderJobError(
            f"{original.filename}: checksum mismatch: Ensembl's CHECKSUMS says {expected}, "
            f"the downloaded file sums to {observed} ({original.source_url})"
        )


def verify_gzip(original: OriginalFile, path: Path) -> None:
    """Read the whole file as gzip: a truncated or corrupt file fails here."""
    if not original.filename.endswith(".gz"):
        return
    try:
        with gzip.open(path, "rb") as handle:
            while handle.read(CHUNK):
                pass
    except (EOFError, OSError, zlib.error) as error:
        reason = "truncated" if isinstance(error, EOFError) else str(error)
        raise DownloaderJobError(
            f"{original.filename} is not a complete gzip file ({reason}): "
            f"the copy at {original.source_url} is damaged"
        ) from None


def verify_transcriptome_file(original: OriginalFile, path: Path) -> None:
    verify_bsd_sum(original, path)
    verify_gzip(original, path)


def download_transcriptome(job_id: int) -> bool:
    return run_downloader(job_id, verify=verify_transcriptome_file)
