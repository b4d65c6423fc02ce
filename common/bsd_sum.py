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

import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from common.chunks import CHUNK

__all__ = [
    "MAX_CHECKSUMS_LINE",
    "ChecksumEntry",
    "bsd_sum",
    "bsd_sum_bytes",
    "bsd_sum_path",
    "format_sum_line",
    "parse_checksums",
    "read_checksums",
]

BLOCK = 1024
# A sum, a block count and a name of at most 255 bytes fit in a line many times over.
MAX_CHECKSUMS_LINE = 1024
_DIGITS = re.compile(r"[0-9]{1,20}\Z")  # str.isdigit() takes '²', which int() refuses


def _python_update(checksum: int, data: bytes) -> int:
    for byte in data:
        checksum = ((checksum >> 1) | ((checksum & 1) << 15)) + byte
        checksum &= 0xFFFF
    return checksum


def _blocks(total: int) -> int:
    return (total + BLOCK - 1) // BLOCK


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


@dataclass(frozen=True)
class ChecksumEntry:
    """One file of a ``CHECKSUMS`` listing: its sum, its size in 1024-byte blocks, and
    the line that lists it."""

    checksum: int
    blocks: int
    line: int

    @property
    def max_size(self) -> int:
        """The most bytes the file can have: ``sum`` rounds the size up to whole blocks."""
        return self.blocks * BLOCK


def read_checksums(text: str | Iterable[str]) -> dict[str, ChecksumEntry]:
    """Read a ``CHECKSUMS`` file into ``{file name: ChecksumEntry}``.

    Accepts space- or tab-separated lines; blank lines are skipped. A line that is not
    ``<int> <int> <name>``, or is longer than ``MAX_CHECKSUMS_LINE`` characters, raises
    ``ValueError`` naming the line. The names are as listed: checking that each is one
    plain file name is the reader's business (``common.filenames``).
    """
    lines = text.splitlines() if isinstance(text, str) else text
    result: dict[str, ChecksumEntry] = {}
    for number, line in enumerate(lines, start=1):
        if len(line) > MAX_CHECKSUMS_LINE:
            raise ValueError(
                f"line {number} is longer than {MAX_CHECKSUMS_LINE} characters ({len(line)})"
            )
        if not line.strip():
            continue
        fields = line.split(None, 2)
        if len(fields) != 3 or not (_DIGITS.match(fields[0]) and _DIGITS.match(fields[1])):
            # The line itself is not quoted: it is the source's text, and reasons are public.
            raise ValueError(f"line {number} is not '<sum> <blocks> <name>'")
        result[fields[2].strip()] = ChecksumEntry(int(fields[0]), int(fields[1]), number)
    return result


def parse_checksums(text: str | Iterable[str]) -> dict[str, tuple[int, int]]:
    """Parse a ``CHECKSUMS`` file into ``{file name: (checksum, blocks)}`` (see
    :func:`read_checksums`)."""
    return {name: (e.checksum, e.blocks) for name, e in read_checksums(text).items()}
