"""The BSD ``sum`` checksum, as Ensembl publishes it in each FTP folder's ``CHECKSUMS`` file.

Ensembl's production pipeline writes ``CHECKSUMS`` by running coreutils ``sum`` (whose default
algorithm is the BSD one, ``sum -r``) on every file of a leaf folder, one line per file, sorted
by name::

    07211  9766 Homo_sapiens.GRCh38.dna.primary_assembly.fa.gz

that is the 16-bit checksum printed as ``%05d``, a space, the size in 1024-byte blocks (rounded
up) printed as ``%5d``, a space and the file name. Some of Ensembl's older pipelines separated
the name with a tab instead, so readers should split on any whitespace
(:func:`parse_checksums` does).

The algorithm: for each byte, rotate the 16-bit checksum right by one bit, then add the byte,
modulo 2**16. It is inherently sequential, so the pure-Python loop runs at a few MB/s; when
the coreutils ``sum`` program is installed, :func:`bsd_sum` streams the data through
``sum -r`` instead (hundreds of MB/s) and gets the identical result.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from common.chunks import CHUNK

__all__ = [
    "bsd_sum",
    "bsd_sum_bytes",
    "bsd_sum_path",
    "format_sum_line",
    "parse_checksums",
]


def _python_update(checksum: int, data: bytes) -> int:
    for byte in data:
        checksum = ((checksum >> 1) | ((checksum & 1) << 15)) + byte
        checksum &= 0xFFFF
    return checksum


def _blocks(total: int) -> int:
    return (total + 1023) // 1024


def bsd_sum_bytes(data: bytes) -> tuple[int, int]:
    """Return ``(checksum, blocks)`` of ``data`` (pure Python; for small data)."""
    return _python_update(0, data), _blocks(len(data))


def _external_sum(fileobj: BinaryIO, sum_program: str) -> tuple[int, int]:
    total = 0
    with subprocess.Popen(
        [sum_program, "-r"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        try:
            while chunk := fileobj.read(CHUNK):
                total += len(chunk)
                proc.stdin.write(chunk)
        finally:
            proc.stdin.close()
        out = proc.stdout.read().decode("ascii", "replace")
        err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
        code = proc.wait()
    fields = out.split()
    if code != 0 or len(fields) < 2:
        raise OSError(f"{sum_program} -r failed (exit {code}): {err.strip() or out.strip()}")
    checksum = int(fields[0])
    blocks = _blocks(total)
    if int(fields[1]) != blocks:  # pragma: no cover - would mean a foreign `sum`
        raise OSError(f"{sum_program} -r reported {fields[1]} blocks for {total} bytes")
    return checksum, blocks


def bsd_sum(fileobj: BinaryIO, *, use_external: bool | None = None) -> tuple[int, int]:
    """Return ``(checksum, blocks)`` of everything left to read in ``fileobj``.

    ``checksum`` is the BSD 16-bit rotating checksum and ``blocks`` the number of 1024-byte
    blocks, rounded up (an empty input gives ``(0, 0)``), exactly as ``sum -r`` prints them.
    ``use_external``: ``None`` (the default) streams through the coreutils ``sum`` program when
    it is installed and falls back to pure Python otherwise; ``True`` requires the program;
    ``False`` always uses pure Python.
    """
    program = shutil.which("sum") if use_external is not False else None
    if use_external and program is None:
        raise FileNotFoundError("the coreutils `sum` program is not installed")
    if program is not None:
        return _external_sum(fileobj, program)
    checksum = 0
    total = 0
    while chunk := fileobj.read(CHUNK):
        total += len(chunk)
        checksum = _python_update(checksum, chunk)
    return checksum, _blocks(total)


def bsd_sum_path(path: str | Path, *, use_external: bool | None = None) -> tuple[int, int]:
    """:func:`bsd_sum` of the file at ``path``."""
    with open(path, "rb") as fileobj:
        return bsd_sum(fileobj, use_external=use_external)


def format_sum_line(checksum: int, blocks: int, name: str) -> str:
    """One ``CHECKSUMS`` line (with its newline), as ``sum -r <name>`` prints it."""
    return f"{checksum:05d} {blocks:5d} {name}\n"


def parse_checksums(text: str | Iterable[str]) -> dict[str, tuple[int, int]]:
    """Parse a ``CHECKSUMS`` file into ``{file name: (checksum, blocks)}``.

    Accepts space- or tab-separated lines; blank lines are skipped. A line that is not
    ``<int> <int> <name>`` raises ``ValueError`` naming the line.
    """
    lines = text.splitlines() if isinstance(text, str) else text
    result: dict[str, tuple[int, int]] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split(None, 2)
        if len(fields) != 3 or not fields[0].isdigit() or not fields[1].isdigit():
            # The line itself is not quoted: it is the source's text, and reasons are public.
            raise ValueError(f"CHECKSUMS line {number} is not '<sum> <blocks> <name>'")
        result[fields[2].strip()] = (int(fields[0]), int(fields[1]))
    return result
