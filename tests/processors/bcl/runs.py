"""Writers for Illumina run folders, for tests and bench/demultiplex.py.

Each writer follows the format as docs/reference describe it (per-tile BCL, .bcl.gz,
NextSeq BGZF with .bci, CBCL with and without non-PF clusters, .filter, .locs,
.clocs, s.locs), independently of the readers in processors/bcl, so a test that
writes with these and reads with those checks both against the description.

`synthetic_calls` makes base calls whose index reads carry chosen samples'
barcodes (with chosen mismatches and no-calls), so a test knows the answer.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

BASE_CODE = {"A": 0, "C": 1, "G": 2, "T": 3}
CBCL_BINS = ((0, 2), (1, 12), (2, 23), (3, 37))  # (bin, quality); bin 0 is a no-call


@dataclass
class Tile:
    lane: int
    tile: int
    calls: np.ndarray  # clusters x cycles, BCL bytes (base | quality << 2, 0 = no-call)
    passed: np.ndarray  # bool
    x: np.ndarray  # float32 positions
    y: np.ndarray
    truth: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))  # sample per cluster


def run_info_xml(
    reads: list[tuple[int, bool]],
    lanes: int,
    tiles: list[str],
    instrument: str = "M00001",
    flowcell: str = "FC0001",
    number: int = 7,
    reverse_i5: bool = False,
) -> str:
    rows = []
    index_reads = 0
    for position, (cycles, is_index) in enumerate(reads, start=1):
        extra = ""
        if is_index:
            index_reads += 1
            if index_reads == 2 and reverse_i5:
                extra = ' IsReverseComplement="Y"'
        rows.append(
            f'<Read Number="{position}" NumCycles="{cycles}" '
            f'IsIndexedRead="{"Y" if is_index else "N"}"{extra}/>'
        )
    tile_rows = "".join(f"<Tile>{t}</Tile>" for t in tiles)
    return (
        f'<?xml version="1.0"?>\n<RunInfo Version="5"><Run Id="RUN_{flowcell}" '
        f'Number="{number}"><Flowcell>{flowcell}</Flowcell><Instrument>{instrument}'
        f"</Instrument><Date>2024-05-06T10:00:00Z</Date><Reads>{''.join(rows)}</Reads>"
        f'<FlowcellLayout LaneCount="{lanes}" SurfaceCount="2" SwathCount="1" '
        f'TileCount="1"><TileSet><Tiles>{tile_rows}</Tiles></TileSet></FlowcellLayout>'
        "</Run></RunInfo>\n"
    )


def synthetic_calls(
    rng: np.random.Generator,
    n: int,
    reads: list[tuple[int, bool]],
    barcodes: list[tuple[str, ...]],
    qualities: tuple[int, ...] = (12, 23, 37),
    mismatch_rate: float = 0.1,
    nocall_rate: float = 0.01,
    unknown_rate: float = 0.05,
) -> tuple[np.ndarray, np.ndarray]:
    """Calls for n clusters: index reads hold a sample's barcodes (with a mismatch in
    some, random sequence in others); returns (calls, sample per cluster, -1 unknown)."""
    cycles = sum(c for c, _ in reads)
    base = rng.integers(0, 4, size=(n, cycles), dtype=np.uint8)
    quality = rng.choice(np.array(qualities, np.uint8), size=(n, cycles))
    truth = rng.integers(0, max(len(barcodes), 1), size=n).astype(np.int32)
    if barcodes:
        truth[rng.random(n) < unknown_rate] = -1
        column = 0
        slot = 0
        for length, is_index in reads:
            if is_index and slot < len(barcodes[0]):
                table = np.array(
                    [[BASE_CODE[c] for c in codes[slot][:length]] for codes in barcodes], np.uint8
                )
                width = table.shape[1]
                known = truth >= 0
                base[known, column : column + width] = table[truth[known]]
                flip = known & (rng.random(n) < mismatch_rate)
                where = rng.integers(0, width, size=n)
                rows = np.flatnonzero(flip)
                base[rows, column + where[rows]] = (base[rows, column + where[rows]] + 1) % 4
                slot += 1
            column += length
    calls = base | (quality << 2)
    calls[rng.random((n, cycles)) < nocall_rate] = 0
    return calls.astype(np.uint8), truth


def positions(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions a clocs file can hold exactly (bins of 25 pixels, tenths within),
    in bin order, so the same values can be written as locs, clocs or s.locs."""
    bins = np.sort(rng.integers(0, 82 * 80, size=n))
    x = (bins % 82 * 25).astype(np.float32) + rng.integers(0, 250, n).astype(np.float32) / 10
    y = (bins // 82 * 25).astype(np.float32) + rng.integers(0, 250, n).astype(np.float32) / 10
    return x.astype(np.float32), y.astype(np.float32)


# ------------------------------------------------------------------ files


def write_filter(path: Path, passed: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<III", 0, 3, len(passed)) + passed.astype(np.uint8).tobytes())


def write_locs(path: Path, x: np.ndarray, y: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pairs = np.stack([x, y], axis=1).astype("<f4")
    path.write_bytes(struct.pack("<ifI", 1, 1.0, len(x)) + pairs.tobytes())


def write_clocs(path: Path, x: np.ndarray, y: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    bins = (np.floor(y / 25).astype(int) * 82 + np.floor(x / 25).astype(int)).tolist()
    dx = np.round((x - np.floor(x / 25) * 25) * 10).astype(int).tolist()
    dy = np.round((y - np.floor(y / 25) * 25) * 10).astype(int).tolist()
    count = (max(bins) + 1) if bins else 0
    per_bin: list[list[tuple[int, int]]] = [[] for _ in range(count)]
    for b, a, c in zip(bins, dx, dy, strict=True):
        per_bin[b].append((a, c))
    out = bytearray(struct.pack("<BI", 1, count))
    for entries in per_bin:
        out.append(len(entries))
        for a, c in entries:
            out += bytes((a, c))
    path.write_bytes(bytes(out))


def write_positions(run: Path, tile: Tile, kind: str) -> None:
    folder = run / "Data" / "Intensities" / f"L{tile.lane:03d}"
    if kind == "clocs":
        write_clocs(folder / f"s_{tile.lane}_{tile.tile}.clocs", tile.x, tile.y)
    elif kind == "locs":
        write_locs(folder / f"s_{tile.lane}_{tile.tile}.locs", tile.x, tile.y)
    elif kind == "slocs":
        write_locs(run / "Data" / "Intensities" / "s.locs", tile.x, tile.y)


def basecalls(run: Path, lane: int) -> Path:
    return run / "Data" / "Intensities" / "BaseCalls" / f"L{lane:03d}"


def write_bcl_tiles(run: Path, tiles: list[Tile], gz: bool = False) -> None:
    """Per-tile BCL: C<cycle>.1/s_<lane>_<tile>.bcl[.gz], a filter per tile."""
    for tile in tiles:
        folder = basecalls(run, tile.lane)
        write_filter(folder / f"s_{tile.lane}_{tile.tile}.filter", tile.passed)
        for cycle in range(tile.calls.shape[1]):
            data = struct.pack("<I", len(tile.calls)) + tile.calls[:, cycle].tobytes()
            cycle_folder = folder / f"C{cycle + 1}.1"
            cycle_folder.mkdir(parents=True, exist_ok=True)
            name = f"s_{tile.lane}_{tile.tile}.bcl"
            if gz:
                (cycle_folder / (name + ".gz")).write_bytes(zlib_gzip(data))
            else:
                (cycle_folder / name).write_bytes(data)


def zlib_gzip(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    return compressor.compress(data) + compressor.flush()


def bgzf_block(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    deflated = compressor.compress(data) + compressor.flush()
    size = 18 + len(deflated) + 8
    header = b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff\x06\x00BC\x02\x00"
    return (
        header
        + struct.pack("<H", size - 1)
        + deflated
        + struct.pack("<II", zlib.crc32(data), len(data))
    )


BGZF_EOF = bgzf_block(b"")


def write_bgzf_lane(run: Path, lane: int, tiles: list[Tile], block: int = 50_000) -> None:
    """NextSeq: <cycle:04d>.bcl.bgzf holding every tile (BCL, after a uint32 count of
    all clusters), its .bci of virtual offsets, s_<lane>.bci, s_<lane>.filter and
    Intensities/L00<lane>/s_<lane>.locs."""
    folder = basecalls(run, lane)
    folder.mkdir(parents=True, exist_ok=True)
    total = sum(len(t.passed) for t in tiles)
    (folder / f"s_{lane}.bci").write_bytes(
        b"".join(struct.pack("<II", t.tile, len(t.passed)) for t in tiles)
    )
    write_filter(folder / f"s_{lane}.filter", np.concatenate([t.passed for t in tiles]))
    write_locs(
        run / "Data" / "Intensities" / f"L{lane:03d}" / f"s_{lane}.locs",
        np.concatenate([t.x for t in tiles]),
        np.concatenate([t.y for t in tiles]),
    )
    for cycle in range(tiles[0].calls.shape[1]):
        stream = struct.pack("<I", total) + b"".join(t.calls[:, cycle].tobytes() for t in tiles)
        starts = []
        position = 4
        for t in tiles:
            starts.append(position)
            position += len(t.passed)
        out = bytearray()
        offsets = []
        pending = list(starts)
        for begin in range(0, len(stream), block):
            while pending and pending[0] < begin + block:
                offsets.append((len(out) << 16) | (pending.pop(0) - begin))
            out += bgzf_block(stream[begin : begin + block])
        out += BGZF_EOF
        path = folder / f"{cycle + 1:04d}.bcl.bgzf"
        path.write_bytes(bytes(out))
        (folder / f"{cycle + 1:04d}.bcl.bgzf.bci").write_bytes(
            struct.pack("<II", 0, len(tiles)) + np.array(offsets, "<u8").tobytes()
        )


def to_cbcl_nibbles(calls: np.ndarray) -> np.ndarray:
    """BCL bytes → CBCL nibbles (base | bin << 2) with CBCL_BINS; qualities must be
    among the bins' scores."""
    lookup = np.zeros(64, np.uint8)
    for number, score in CBCL_BINS:
        lookup[score] = number
    nibbles = (calls & 3) | (lookup[calls >> 2] << 2)
    nibbles[calls == 0] = 0
    return nibbles


def write_cbcl_lane(run: Path, lane: int, tiles: list[Tile], exclude_non_pf: bool) -> None:
    """CBCL: C<cycle>.1/L00<lane>_<surface>.cbcl holding the tiles of one surface
    (the tile number's first digit), a filter per tile."""
    folder = basecalls(run, lane)
    surfaces: dict[int, list[Tile]] = {}
    for tile in tiles:
        surfaces.setdefault(tile.tile // 1000, []).append(tile)
        write_filter(folder / f"s_{lane}_{tile.tile}.filter", tile.passed)
    for cycle in range(tiles[0].calls.shape[1]):
        cycle_folder = folder / f"C{cycle + 1}.1"
        cycle_folder.mkdir(parents=True, exist_ok=True)
        for surface, members in surfaces.items():
            records, blocks = [], []
            for tile in members:
                column = tile.calls[:, cycle]
                if exclude_non_pf:
                    column = column[tile.passed]
                nibbles = to_cbcl_nibbles(column)
                if len(nibbles) % 2:
                    nibbles = np.append(nibbles, 0)
                packed = (nibbles[0::2] | (nibbles[1::2] << 4)).astype(np.uint8).tobytes()
                block = zlib_gzip(packed)
                records.append(
                    struct.pack("<IIII", tile.tile, len(column), len(packed), len(block))
                )
                blocks.append(block)
            bins = b"".join(struct.pack("<II", b, q) for b, q in CBCL_BINS)
            body = (
                struct.pack("<BBI", 2, 2, len(CBCL_BINS))
                + bins
                + struct.pack("<I", len(records))
                + b"".join(records)
                + struct.pack("<B", 1 if exclude_non_pf else 0)
            )
            header = struct.pack("<HI", 1, 6 + len(body)) + body
            (cycle_folder / f"L{lane:03d}_{surface}.cbcl").write_bytes(header + b"".join(blocks))


def write_run(
    run: Path,
    fmt: str,
    reads: list[tuple[int, bool]],
    tiles: list[Tile],
    lanes: int,
    positions_kind: str = "locs",
    **run_info,
) -> Path:
    """A whole run folder: fmt is bcl, bcl.gz, bgzf, cbcl or cbcl-pf (non-PF excluded)."""
    run.mkdir(parents=True, exist_ok=True)
    names = [f"{t.lane}_{t.tile}" for t in tiles]
    (run / "RunInfo.xml").write_text(run_info_xml(reads, lanes, names, **run_info))
    by_lane: dict[int, list[Tile]] = {}
    for tile in tiles:
        by_lane.setdefault(tile.lane, []).append(tile)
    for lane, members in by_lane.items():
        if fmt in ("bcl", "bcl.gz"):
            write_bcl_tiles(run, members, gz=fmt == "bcl.gz")
        elif fmt == "bgzf":
            write_bgzf_lane(run, lane, members)
        else:
            write_cbcl_lane(run, lane, members, exclude_non_pf=fmt == "cbcl-pf")
        if fmt != "bgzf":
            for tile in members:
                write_positions(run, tile, positions_kind)
    return run


def make_tiles(
    rng: np.random.Generator,
    lanes: int,
    tile_numbers: list[int],
    clusters: int,
    reads: list[tuple[int, bool]],
    barcodes: list[tuple[str, ...]],
    pf_rate: float = 0.9,
    **calls_options,
) -> list[Tile]:
    tiles = []
    for lane in range(1, lanes + 1):
        for number in tile_numbers:
            calls, truth = synthetic_calls(rng, clusters, reads, barcodes, **calls_options)
            x, y = positions(rng, clusters)
            passed = rng.random(clusters) < pf_rate
            tiles.append(Tile(lane, number, calls, passed, x, y, truth))
    return tiles
