"""Unaligned BAM, as Dorado writes it without `--emit-fastq`: read record by
record, and written back out one file per pod5 file.

A BAM file is BGZF (gzip members of at most 64 KiB with a `BC` extra field,
ending with an empty one): the header (`BAM\\1`, its SAM text with the `@RG`
line naming the run and the model, the references), then one record per read:
fixed fields, the read name, CIGAR, 4-bit bases, qualities and SAM tags
(`fn:Z:` the pod5 file, `qs:f:` the mean qscore, …). Only what the check needs
is decoded; records are copied byte for byte.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MAGIC = b"BAM\x01"
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
BLOCK_DATA = 0xFF00  # input bytes per BGZF block (a block holds at most 64 KiB)
FIXED = struct.Struct("<iiBBHHHiiii")  # after block_size: 32 bytes
TAG_SIZES = {"A": 1, "c": 1, "C": 1, "s": 2, "S": 2, "i": 4, "I": 4, "f": 4}
TAG_FORMATS = {"c": "<b", "C": "<B", "s": "<h", "S": "<H", "i": "<i", "I": "<I", "f": "<f"}


class BadBam(ValueError):
    """Not the BAM a basecaller writes; the message says where."""


@dataclass
class BamRecord:
    raw: bytes  # block_size and all: copied as is
    read_id: str
    sequence_length: int
    tags: dict[str, object]


def _read_exact(stream: BinaryIO, size: int, what: str) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise BadBam(f"it ends inside {what}")
    return data


def read_header(stream: BinaryIO) -> bytes:
    """The header's bytes, as they are (to begin each output with)."""
    magic = stream.read(4)
    if magic != MAGIC:
        raise BadBam("it does not start with BAM's magic (BAM\\1)")
    (l_text,) = struct.unpack("<i", _read_exact(stream, 4, "the header"))
    text = _read_exact(stream, l_text, "the header text")
    (n_ref,) = struct.unpack("<i", _read_exact(stream, 4, "the header"))
    refs = b""
    for _ in range(n_ref):
        (l_name,) = struct.unpack("<i", _read_exact(stream, 4, "a reference"))
        refs += struct.pack("<i", l_name) + _read_exact(stream, l_name + 4, "a reference")
    return magic + struct.pack("<i", l_text) + text + struct.pack("<i", n_ref) + refs


def _tags(data: bytes) -> dict[str, object]:
    tags: dict[str, object] = {}
    at = 0
    while at + 3 <= len(data):
        name, kind = data[at : at + 2].decode("ascii", "replace"), chr(data[at + 2])
        at += 3
        if kind in ("Z", "H"):
            end = data.index(b"\0", at)
            tags[name] = data[at:end].decode("utf-8", "replace")
            at = end + 1
        elif kind == "A":
            tags[name] = chr(data[at])
            at += 1
        elif kind in TAG_FORMATS:
            size = TAG_SIZES[kind]
            (tags[name],) = struct.unpack(TAG_FORMATS[kind], data[at : at + size])
            at += size
        elif kind == "B":
            subtype = chr(data[at])
            (count,) = struct.unpack("<i", data[at + 1 : at + 5])
            at += 5 + count * TAG_SIZES.get(subtype, 1)
        else:
            raise BadBam(f"a tag {name!r} of unknown type {kind!r}")
    return tags


def bam_records(stream: BinaryIO) -> Iterator[BamRecord]:
    """Every record after the header (which the caller has read)."""
    number = 0
    while True:
        head = stream.read(4)
        if not head:
            return
        number += 1
        if len(head) != 4:
            raise BadBam(f"it ends inside record {number}")
        (size,) = struct.unpack("<i", head)
        if size < FIXED.size:
            raise BadBam(f"record {number} is {size} bytes, less than a record's fixed part")
        body = _read_exact(stream, size, f"record {number}")
        fields = FIXED.unpack_from(body)
        l_read_name, n_cigar, l_seq = fields[2], fields[5], fields[7]
        name_end = FIXED.size + l_read_name
        read_id = body[FIXED.size : name_end - 1].decode("ascii", "replace")
        aux = name_end + 4 * n_cigar + (l_seq + 1) // 2 + l_seq
        try:
            tags = _tags(body[aux:])
        except (ValueError, struct.error) as error:
            raise BadBam(f"record {number} ({read_id}): its tags cannot be read: {error}") from None
        yield BamRecord(head + body, read_id, l_seq, tags)


def open_bam(path: Path) -> tuple[BinaryIO, bytes]:
    """The decompressed stream of a BAM file, past its header; and the header."""
    stream = gzip.open(path, "rb")  # noqa: SIM115 (returned: the caller closes it)
    try:
        return stream, read_header(stream)
    except (BadBam, OSError, EOFError) as error:
        stream.close()
        raise BadBam(str(error)) from None


class BgzfWriter:
    """Writes BGZF: blocks of at most 64 KiB, each a gzip member with its size in
    a `BC` extra field, then the empty end-of-file block."""

    def __init__(self, path: Path):
        self.handle = open(path, "wb")  # noqa: SIM115 (closed by close())
        self.buffer = bytearray()

    def write(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= BLOCK_DATA:
            self._block(bytes(self.buffer[:BLOCK_DATA]))
            del self.buffer[:BLOCK_DATA]

    def _block(self, data: bytes) -> None:
        compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        deflated = compressor.compress(data) + compressor.flush()
        header = b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff\x06\x00BC\x02\x00"
        size = len(header) + 2 + len(deflated) + 8
        self.handle.write(header + struct.pack("<H", size - 1) + deflated)
        self.handle.write(struct.pack("<II", zlib.crc32(data), len(data)))

    def close(self) -> None:
        if self.buffer:
            self._block(bytes(self.buffer))
            self.buffer.clear()
        self.handle.write(BGZF_EOF)
        self.handle.close()
