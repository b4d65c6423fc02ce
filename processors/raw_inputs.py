"""Reading a job's raw inputs as streams: gunzipped as they are read, split into
lines a megabyte at a time, and a damaged gzip turned into a failure that names
the file.

A damaged gzip (truncated or corrupt) is not retried. `fetch_raw_files` has
already checked the copy against the SHA-256 recorded at download, so the bytes
are the ones that were downloaded: retrying the job would fetch the same bytes
and fail the same way. The job fails with `no_retry`, and the damaged copy is
removed from temporary storage and its download forgotten, so that retrying the
downloader job fetches the file afresh instead of finding it "already
downloaded".
"""

from __future__ import annotations

import gzip
import logging
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from django.db import transaction

from common.chunks import CHUNK
from common.models import OriginalFile
from common.storage import StorageError, temporary_storage
from runner.pipeline import JobError

logger = logging.getLogger(__name__)


def open_input(path: Path) -> BinaryIO:
    """The file's bytes, gunzipped as they are read when its name ends in .gz."""
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def read_lines(stream: BinaryIO) -> Iterator[bytes]:
    """A stream's lines (without their line ends), read a megabyte at a time."""
    rest = b""
    while chunk := stream.read(CHUNK):
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        yield from lines
    if rest:
        yield rest


def discard_damaged_download(original: OriginalFile) -> bool:
    """Remove a damaged input from temporary storage and forget its download, so
    that the downloader fetches it again rather than find it already there.
    Leaves alone a copy that a new download replaced meanwhile."""
    with transaction.atomic():
        locked = OriginalFile.objects.select_for_update().get(pk=original.pk)
        if not locked.temp_key or (locked.temp_key, locked.sha256) != (
            original.temp_key,
            original.sha256,
        ):
            return False
        try:
            temporary_storage().delete(locked.temp_key)
        except StorageError:
            logger.warning("could not remove damaged %s from temporary storage", locked.temp_key)
            return False
        locked.forget_download()
    return True


@contextmanager
def reading(original: OriginalFile) -> Iterator[None]:
    """Turn a damaged gzip stream into a failure that names the file (see the
    module's docstring for why it is not retried)."""
    try:
        yield
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        if isinstance(error, EOFError):
            detail = "truncated: the gzip stream ends before its end-of-stream marker"
        else:
            detail = f"corrupt: {error}"
        as_downloaded = ""
        if original.sha256:  # fetch_raw_files checked it
            as_downloaded = "it is the file as downloaded (its SHA-256 matches), so "
        if discard_damaged_download(original):
            remedy = "it was removed from temporary storage: retry the downloader job to fetch it"
        else:
            remedy = "download it again"
        raise JobError(
            f"{original.filename} is damaged ({detail}): {as_downloaded}retrying this job "
            f"cannot help; {remedy}",
            no_retry=True,
        ) from None
