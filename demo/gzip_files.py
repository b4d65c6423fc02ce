"""Deterministic gzip writing (no file name, mtime 0), renamed into place when complete."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

__all__ = ["gzip_file", "write_gzipped"]


def gzip_file(src: str | Path, dest: str | Path, *, compresslevel: int = 6) -> Path:
    """Gzip ``src`` into ``dest`` deterministically (no file name, mtime 0 in the header).

    Writes to a temporary name beside ``dest`` and renames it into place, so a reader never
    sees a half-written file.
    """
    src, dest = Path(src), Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.{os.getpid()}.partial")
    with (
        open(src, "rb") as source,
        open(partial, "wb") as raw,
        gzip.GzipFile(
            filename="", mode="wb", fileobj=raw, compresslevel=compresslevel, mtime=0
        ) as compressed,
    ):
        shutil.copyfileobj(source, compressed, 1 << 20)
    os.replace(partial, dest)
    return dest


def write_gzipped(data: bytes | str, dest: str | Path, *, compresslevel: int = 6) -> Path:
    """Write ``data`` gzipped (deterministically, as :func:`gzip_file`) to ``dest``."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    partial = dest.with_name(f".{dest.name}.{os.getpid()}.partial")
    with (
        open(partial, "wb") as raw,
        gzip.GzipFile(
            filename="", mode="wb", fileobj=raw, compresslevel=compresslevel, mtime=0
        ) as compressed,
    ):
        compressed.write(data)
    os.replace(partial, dest)
    return dest
