"""The `transcriptome` downloader task: an organism's genome FASTA and GTF from
Ensembl, fetched once for both of its transcriptome index batches.

Each file is checked against the BSD sum Ensembl publishes in the folder's
CHECKSUMS, and read through to the end as gzip, so a damaged file never reaches
a processor."""

from __future__ import annotations

import gzip
import zlib

from common.bsd_sum import bsd_sum_path
from common.chunks import CHUNK
from common.models import DownloaderJob
from downloaders.steps import DownloaderContext, run_downloader
from runner.pipeline import JobError


def verify_bsd_sum(context: DownloaderContext) -> DownloaderContext:
    original, path = context["original"], context["staged"]
    expected = original.expected_checksums.get("bsd_sum")
    if not expected:
        return context
    checksum, blocks = bsd_sum_path(path)
    observed = f"{checksum} {blocks}"
    if [checksum, blocks] != [int(x) for x in expected.split()]:
        raise JobError(
            f"{original.filename}: checksum mismatch: Ensembl's CHECKSUMS says {expected}, "
            f"the downloaded file sums to {observed} ({original.source_url})"
        )
    return context


def verify_gzip(context: DownloaderContext) -> DownloaderContext:
    """Read the whole file as gzip: a truncated or corrupt file fails here."""
    original, path = context["original"], context["staged"]
    if not original.filename.endswith(".gz"):
        return context
    try:
        with gzip.open(path, "rb") as handle:
            while handle.read(CHUNK):
                pass
    except (EOFError, OSError, zlib.error) as error:
        reason = "truncated" if isinstance(error, EOFError) else str(error)
        raise JobError(
            f"{original.filename} is not a complete gzip file ({reason}): "
            f"the copy at {original.source_url} is damaged"
        ) from None
    return context


def download_transcriptome(job: DownloaderJob) -> DownloaderContext:
    return run_downloader(job, checks=[verify_bsd_sum, verify_gzip])
