"""Readers for Illumina's base-call, filter and position files.

Every reader returns numpy arrays and checks sizes and counts against the header,
raising ConversionError naming the file when they disagree: the files come from a
shared folder and may be truncated by a copy that died half-way.

Base calls are returned in one form for every format, the per-tile BCL byte: bits
0-1 the base (A, C, G, T), bits 2-7 the quality, 0 a no-call. CBCL nibbles are
mapped to that form through the file's quality bins.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np
from isal import igzip, isal_zlib

from processors.bcl.errors import ConversionError

# ---------------------------------------------------------------- per-tile BCL


def read_bcl(path: Path, expected_clusters: int | None = None) -> np.ndarray:
    """One cycle of one tile from `s_<lane>_<tile>.bcl` or `.bcl.gz`."""
    data = _read_bytes(path)
    if path.name.endswith(".gz"):
        try:
            data = igzip.decompress(data)
        except (OSError, EOFError, isal_zlib.error, zlib.error) as error:
            raise ConversionError(f"is not a complete gzip file ({error})", path) from None
    return parse_bcl(data, path, expected_clusters)


def read_bcl_into(path: str | Path, out: np.ndarray) -> np.ndarray:
    """One cycle of one tile from a plain `s_<lane>_<tile>.bcl` read straight into out
    (a uint8 array of 4 + the tile's clusters): no allocation per file. Returns the
    calls, a view of out; checks the count as read_bcl does. A missing file raises
    FileNotFoundError (the caller may look for `.bcl.gz`)."""
    try:
        with open(path, "rb", buffering=0) as stream:
            got = stream.readinto(memoryview(out))
            extra = stream.read(1)
    except FileNotFoundError:
        raise  # not a ConversionError: the caller looks for the file's other names
    except OSError as error:
        raise ConversionError(f"cannot be read ({error.strerror or error})", path) from None
    if extra:  # longer than the tile: let parse_bcl name what is wrong
        return parse_bcl(Path(path).read_bytes(), Path(path), len(out) - 4)
    return parse_bcl(out[:got], path, len(out) - 4)


def parse_bcl(data, path: str | Path, expected_clusters: int | None = None) -> np.ndarray:
    if len(data) < 4:
        raise ConversionError("is shorter than a BCL header (4 bytes): truncated", path)
    (count,) = struct.unpack_from("<I", data, 0)
    if len(data) != 4 + count:
        raise ConversionError(
            f"says {count} clusters but holds {len(data) - 4}: truncated or damaged", path
        )
    if expected_clusters is not None and count != expected_clusters:
        raise ConversionError(
            f"has {count} clusters where the tile's filter file has {expected_clusters}", path
        )
    return np.frombuffer(data, dtype=np.uint8, offset=4)


# ---------------------------------------------------------------- NextSeq BGZF


def read_bci_tiles(path: Path) -> list[tuple[int, int]]:
    """`s_<lane>.bci`: (tile, cluster count) records, in the order the tiles are stored."""
    data = _read_bytes(path)
    if len(data) % 8:
        raise ConversionError(f"is {len(data)} bytes, not a whole number of 8-byte records", path)
    pairs = np.frombuffer(data, dtype="<u4").reshape(-1, 2)
    return [(int(tile), int(count)) for tile, count in pairs]


def read_bgzf_offsets(path: Path, tile_count: int) -> list[int]:
    """`<cycle>.bcl.bgzf.bci`: uint32 version, uint32 tile count, a uint64 virtual
    offset per tile."""
    data = _read_bytes(path)
    if len(data) < 8:
        raise ConversionError("is shorter than its 8-byte header: truncated", path)
    _version, count = struct.unpack_from("<II", data, 0)
    if len(data) != 8 + 8 * count:
        raise ConversionError(f"says {count} tiles but holds {(len(data) - 8) / 8:g}", path)
    if count != tile_count:
        raise ConversionError(f"indexes {count} tiles where s_<lane>.bci has {tile_count}", path)
    return [int(v) for v in np.frombuffer(data, dtype="<u8", offset=8)]


def read_bgzf_tile(path: Path, virtual_offset: int, clusters: int) -> np.ndarray:
    """The `clusters` bytes of one tile from a NextSeq `.bcl.bgzf` cycle file, starting
    at the tile's BGZF virtual offset (compressed block start << 16 | offset within)."""
    block_start, within = virtual_offset >> 16, virtual_offset & 0xFFFF
    wanted = within + clusters
    pieces: list[bytes] = []
    have = 0
    try:
        with path.open("rb") as stream:
            stream.seek(block_start)
            pending = b""
            while have < wanted:
                chunk = stream.read(1 << 20)
                if not chunk and not pending:
                    break
                pending += chunk
                while pending and have < wanted:
                    inflater = zlib.decompressobj(31)
                    try:
                        out = inflater.decompress(pending)
                    except zlib.error as error:
                        raise ConversionError(f"has a damaged BGZF block ({error})", path) from None
                    if not inflater.eof:
                        if not chunk:
                            raise ConversionError("ends inside a BGZF block: truncated", path)
                        break  # need more input for this block
                    pieces.append(out)
                    have += len(out)
                    pending = inflater.unused_data
                if not chunk:
                    break
    except OSError as error:
        raise ConversionError(f"cannot be read ({error.strerror or error})", path) from None
    data = b"".join(pieces)
    if len(data) < wanted:
        raise ConversionError(
            f"holds {max(len(data) - within, 0)} of the tile's {clusters} clusters: truncated",
            path,
        )
    return np.frombuffer(data, dtype=np.uint8, count=clusters, offset=within)


# ---------------------------------------------------------------- CBCL


@dataclass(frozen=True)
class CbclTile:
    tile: int
    clusters: int
    uncompressed: int
    compressed: int
    offset: int  # where the tile's gzip block starts in the file


@dataclass(frozen=True)
class CbclHeader:
    path: Path
    version: int
    header_size: int
    bits_per_base: int
    bits_per_quality: int
    bins: tuple[tuple[int, int], ...]
    tiles: dict[int, CbclTile]
    non_pf_excluded: bool

    @property
    def coding(self) -> tuple:
        """What decides how calls decode: files with the same coding share tables."""
        return (self.bits_per_base, self.bits_per_quality, self.bins)

    @cached_property
    def lookup(self) -> np.ndarray:
        """Maps each packed nibble (or byte, for 8-bit data) to a BCL byte."""
        return coding_lookup(self.coding)

    @cached_property
    def pair_lookup(self) -> np.ndarray:
        """Packed byte → its two clusters' BCL bytes as one little-endian uint16 (low
        nibble's first), so one gather of 2-byte items unpacks a tile."""
        values = np.arange(256)
        pairs = np.stack([self.lookup[values & 0x0F], self.lookup[values >> 4]], axis=1)
        return np.ascontiguousarray(pairs).view("<u2").reshape(256)


@lru_cache(maxsize=64)
def coding_lookup(coding: tuple) -> np.ndarray:
    bits_per_base, bits_per_quality, bins = coding
    scores = dict(bins)
    table = np.zeros(256, dtype=np.uint8)
    for value in range(1 << (bits_per_base + bits_per_quality)):
        base, quality_bin = value & 3, value >> 2
        if quality_bin == 0:
            continue  # quality bin 0 is a no-call
        score = scores.get(quality_bin, quality_bin) if scores else quality_bin
        table[value] = base | (min(score, 63) << 2)
    table.flags.writeable = False  # shared by every file with the same coding
    return table


def read_cbcl_header(path: Path, stream=None) -> CbclHeader:
    """A CBCL file's header; from stream (the file, open for reading) when given."""
    try:
        if stream is None:
            with path.open("rb") as own:
                return read_cbcl_header(path, own)
        stream.seek(0)
        start = stream.read(6)
        if len(start) < 6:
            raise ConversionError("is shorter than a CBCL header: truncated", path)
        version, header_size = struct.unpack("<HI", start)
        if not 6 < header_size < 1 << 24:
            raise ConversionError(f"has a header size of {header_size}", path)
        rest = stream.read(header_size - 6)
        file_size = os.fstat(stream.fileno()).st_size
    except OSError as error:
        raise ConversionError(f"cannot be read ({error.strerror or error})", path) from None
    if len(rest) != header_size - 6:
        raise ConversionError("ends inside its header: truncated", path)
    try:
        bits_base, bits_quality, bin_count = struct.unpack_from("<BBI", rest, 0)
        position = 6
        bins = tuple(struct.unpack_from(f"<{2 * bin_count}I", rest, position))
        position += 8 * bin_count
        (tile_count,) = struct.unpack_from("<I", rest, position)
        position += 4
        records = struct.unpack_from(f"<{4 * tile_count}I", rest, position)
        position += 16 * tile_count
        (excluded,) = struct.unpack_from("<B", rest, position)
    except struct.error:
        raise ConversionError("has a header shorter than its own counts say", path) from None
    if bits_base != 2 or bits_quality not in (2, 6):
        raise ConversionError(f"uses {bits_base}+{bits_quality} bits per call, not 2+2", path)
    tiles: dict[int, CbclTile] = {}
    offset = header_size
    for index in range(tile_count):
        tile, clusters, uncompressed, compressed = records[4 * index : 4 * index + 4]
        if uncompressed != (clusters + 1) // 2 and bits_quality == 2:
            raise ConversionError(
                f"tile {tile} says {clusters} clusters but {uncompressed} unpacked bytes", path
            )
        tiles[tile] = CbclTile(tile, clusters, uncompressed, compressed, offset)
        offset += compressed
    if offset > file_size:
        raise ConversionError(
            f"is {file_size} bytes but its tiles' blocks end at byte {offset}: truncated", path
        )
    pairs = tuple((bins[2 * i], bins[2 * i + 1]) for i in range(bin_count))
    return CbclHeader(
        path, version, header_size, bits_base, bits_quality, pairs, tiles, excluded == 1
    )


def read_cbcl_tile(header: CbclHeader, tile: int, stream=None) -> np.ndarray:
    """One tile's calls from a CBCL file as BCL bytes (one per stored cluster)."""
    return cbcl_calls(header, tile, read_cbcl_block(header, tile, stream))


def read_cbcl_block(header: CbclHeader, tile: int, stream=None) -> np.ndarray:
    """One tile's block from a CBCL file, inflated but still packed (two clusters a
    byte for 2-bit qualities), checked against the header's sizes."""
    path = header.path
    record = header.tiles.get(tile)
    if record is None:
        raise ConversionError(f"has no tile {tile}", path)
    try:
        if stream is None:
            with path.open("rb") as own:
                own.seek(record.offset)
                block = own.read(record.compressed)
        else:
            stream.seek(record.offset)
            block = stream.read(record.compressed)
    except OSError as error:
        raise ConversionError(f"cannot be read ({error.strerror or error})", path) from None
    if len(block) != record.compressed:
        raise ConversionError(f"ends inside tile {tile}'s block: truncated", path)
    if record.uncompressed == 0:
        packed = b""
    else:
        try:
            packed = igzip.decompress(block)
        except (OSError, EOFError, isal_zlib.error, zlib.error) as error:
            raise ConversionError(f"tile {tile}'s block is damaged ({error})", path) from None
    if len(packed) != record.uncompressed:
        raise ConversionError(
            f"tile {tile} unpacks to {len(packed)} bytes, its header says {record.uncompressed}",
            path,
        )
    if header.bits_per_quality != 2 and record.uncompressed < record.clusters:
        raise ConversionError(
            f"tile {tile} unpacks to {len(packed)} bytes for {record.clusters} clusters", path
        )
    return np.frombuffer(packed, dtype=np.uint8)


def cbcl_calls(header: CbclHeader, tile: int, raw: np.ndarray) -> np.ndarray:
    """A tile's inflated CBCL block (read_cbcl_block) as BCL bytes."""
    clusters = header.tiles[tile].clusters
    if header.bits_per_quality == 2:
        # One look-up per packed byte gives both clusters' BCL bytes, low nibble first.
        return header.pair_lookup[raw].view(np.uint8)[:clusters]
    return header.lookup[raw[:clusters]]


# ---------------------------------------------------------------- filters


def read_filter(path: Path) -> np.ndarray:
    """`s_<lane>_<tile>.filter`: a bool per cluster, True = passed filter."""
    data = _read_bytes(path)
    if len(data) >= 12 and struct.unpack_from("<I", data, 0)[0] == 0:
        _zero, _version, count = struct.unpack_from("<III", data, 0)
        start = 12
    elif len(data) >= 4:
        (count,) = struct.unpack_from("<I", data, 0)  # the old header-less form
        start = 4
    else:
        raise ConversionError("is shorter than a filter header: truncated", path)
    if len(data) - start != count:
        raise ConversionError(
            f"says {count} clusters but holds {len(data) - start}: truncated or damaged", path
        )
    return np.frombuffer(data, dtype=np.uint8, offset=start).astype(bool) & True


# ---------------------------------------------------------------- positions


def read_locs(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """`.locs` / `s.locs`: float32 x, y pairs after a 12-byte header."""
    data = _read_bytes(path)
    if len(data) < 12:
        raise ConversionError("is shorter than a locs header: truncated", path)
    (count,) = struct.unpack_from("<I", data, 8)
    if len(data) != 12 + 8 * count:
        raise ConversionError(
            f"says {count} clusters but holds {(len(data) - 12) / 8:g}: truncated or damaged", path
        )
    pairs = np.frombuffer(data, dtype="<f4", offset=12).reshape(-1, 2)
    return pairs[:, 0], pairs[:, 1]


CLOCS_IMAGE_WIDTH = 2048
CLOCS_BLOCK = 25
CLOCS_BINS_PER_ROW = -(-CLOCS_IMAGE_WIDTH // CLOCS_BLOCK)


def read_clocs(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """`.clocs`: positions packed in 25-pixel bins, 82 bins to a row of the image."""
    data = _read_bytes(path)
    if len(data) < 5:
        raise ConversionError("is shorter than a clocs header: truncated", path)
    (bin_count,) = struct.unpack_from("<I", data, 1)
    buffer = np.frombuffer(data, dtype=np.uint8)
    counts = np.empty(bin_count, dtype=np.int64)
    starts = np.empty(bin_count, dtype=np.int64)
    position = 5
    # A Python walk over the bins' count bytes: a tile has a few thousand bins.
    for index in range(bin_count):
        if position >= len(data):
            raise ConversionError(f"ends in bin {index} of {bin_count}: truncated", path)
        count = data[position]
        counts[index] = count
        starts[index] = position + 1
        position += 1 + 2 * count
    if position != len(data):
        raise ConversionError(
            f"is {len(data)} bytes but its {bin_count} bins end at byte {position}", path
        )
    total = int(counts.sum())
    bin_of = np.repeat(np.arange(bin_count), counts)
    within = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    at = starts[bin_of] + 2 * within
    x_offset = (bin_of % CLOCS_BINS_PER_ROW * CLOCS_BLOCK).astype(np.float32)
    y_offset = (bin_of // CLOCS_BINS_PER_ROW * CLOCS_BLOCK).astype(np.float32)
    ten = np.float32(10)
    x = buffer[at].astype(np.float32) / ten + x_offset
    y = buffer[at + 1].astype(np.float32) / ten + y_offset
    return x, y


def name_coordinate(position: np.ndarray) -> np.ndarray:
    """A position as read names carry it: round(10 * p + 1000), rounding halves up,
    in single precision as the positions are stored."""
    scaled = position.astype(np.float32) * np.float32(10) + np.float32(1000)
    return np.floor(scaled + np.float32(0.5)).astype(np.int64)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConversionError("is missing", path) from None
    except OSError as error:
        raise ConversionError(f"cannot be read ({error.strerror or error})", path) from None
