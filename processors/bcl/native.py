"""Compiled loops for the per-tile hot paths, built at first use.

Two loops, in one small C library:

- `cluster_major`: a tile's per-cycle base calls (CBCL's packed nibbles through the
  file's quality bins, or BCL bytes) → one clusters x cycles array of BCL bytes, a
  block of clusters at a time so the block stays in cache; one pass instead of
  numpy's look-up, copy and transposition.
- `fastq_records`: FASTQ records for the commonest layout (no UMI, no adapter
  trimming, Picard's rules off), each written in one pass, picking the tile's rows
  in output order and counting each record's Q30 bases and quality sum on the way.
  The byte loops are written so the compiler vectorises them (no table look-ups).

The library (native.c, beside this module) is compiled with the system's C
compiler into a cache folder the first time a converter needs it; without a
compiler (or with REFINERY_BCL_NATIVE=0) the numpy paths in processors.bcl.layout
and processors.bcl.fastq do the same work, byte for byte
(tests/processors/bcl/test_native.py compares them).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

# The C source, beside this module (package data, pyproject.toml).
SOURCE_PATH = Path(__file__).with_name("native.c")

_LIBRARY = None
_TRIED = False

P, I64 = ctypes.c_void_p, ctypes.c_int64
SIGNATURES = {
    "cluster_major": (None, [P, P, P, P, I64, I64, I64, P]),
    "cluster_range": (I64, [P, P, P, P, I64, I64, I64, I64, P]),
    "fastq_records": (
        I64,
        [P, P, I64, I64, P, P, I64, P, P, P, P, P, I64, I64, P, P, P, P, P, P, P, P, P],
    ),
}


_SCRATCH: dict[str, np.ndarray] = {}


def scratch(name: str, size: int) -> np.ndarray:
    """A flat uint8 buffer of at least size bytes kept for the process's next tile.

    A tile's big arrays (its calls, its FASTQ text) are tens of megabytes: allocated
    afresh, every tile pays page faults for them again (they are costly in a virtual
    machine); reused, it does not. The caller must be done with the previous use."""
    buffer = _SCRATCH.get(name)
    if buffer is None or len(buffer) < size:
        buffer = _SCRATCH[name] = np.empty(max(size, 1), dtype=np.uint8)
    return buffer[:size]


def release_scratch() -> None:
    _SCRATCH.clear()


def keep_freed_memory() -> None:
    """Ask glibc's malloc to keep freed memory for reuse rather than hand it back to
    the system after every tile (and fault it in again for the next one). For worker
    processes only: memory stays at the process's peak, one tile's worth."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return  # not glibc: nothing to tune
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    mallopt(m_mmap_threshold, 32 << 20)  # glibc's largest: bigger arrays use scratch()
    mallopt(m_trim_threshold, 1 << 30)
    mallopt(m_top_pad, 16 << 20)


def _cache_folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "refinery-bcl"


def library():
    """The compiled library, or None (no compiler, compile failed, or switched off)."""
    global _LIBRARY, _TRIED
    if _TRIED:
        return _LIBRARY
    _TRIED = True
    if os.environ.get("REFINERY_BCL_NATIVE", "1") == "0":
        return None
    try:
        source_text = SOURCE_PATH.read_text()
        digest = hashlib.sha256(source_text.encode()).hexdigest()[:16]
        folder = _cache_folder()
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"bcl_{digest}.so"
        if not target.exists():
            with tempfile.TemporaryDirectory(dir=folder) as work:
                source = Path(work) / "bcl.c"
                source.write_text(source_text)
                built = Path(work) / "bcl.so"
                subprocess.run(
                    ["cc", "-O3", "-shared", "-fPIC", "-o", str(built), str(source)],
                    check=True,
                    capture_output=True,
                    timeout=120,
                )
                os.replace(built, target)  # whole or not at all
        loaded = ctypes.CDLL(str(target))
    except (OSError, subprocess.SubprocessError):
        return None
    for name, (result, arguments) in SIGNATURES.items():
        function = getattr(loaded, name)
        function.restype = result
        function.argtypes = arguments
    _LIBRARY = loaded
    return _LIBRARY


class Transposer:
    """A tile's per-cycle calls (see the C comment on cluster_major), ready to turn
    into clusters x cycles arrays, whole or a range of clusters at a time: sources,
    tables and pointers are checked and laid out once. Build it only when library()
    is not None."""

    def __init__(
        self,
        sources: list[np.ndarray],
        tables: np.ndarray | None,
        packed: bool,
        n: int,
        table_of: np.ndarray | None = None,
    ):
        cycles = len(sources)
        needed = (n + 1) // 2 if packed else n
        for source in sources:
            if source.dtype != np.uint8 or not source.flags.c_contiguous or len(source) < needed:
                raise ValueError("each cycle's calls must be contiguous bytes covering the tile")
        self.sources = sources  # kept alive while the pointers are in use
        self.pointers = np.array([s.ctypes.data for s in sources] or [0], dtype=np.uintp)
        self.tables = self.pairs = None
        if tables is not None:
            tables = np.ascontiguousarray(tables, dtype=np.uint8)
            if table_of is None:
                table_of = np.arange(cycles, dtype=np.int64)
            table_of = np.ascontiguousarray(table_of, dtype=np.int64)
            if tables.ndim != 2 or tables.shape[1] != 256 or table_of.shape != (cycles,):
                raise ValueError("tables must hold 256 bytes each, table_of one per cycle")
            if cycles and not 0 <= table_of.min() <= table_of.max() < len(tables):
                raise ValueError("table_of names a table that is not there")
            values = np.arange(256)
            self.tables = tables
            self.pairs = np.ascontiguousarray(
                tables[:, values & 15].astype(np.uint16)
                | (tables[:, values >> 4].astype(np.uint16) << 8)
            )
        self.table_of = table_of
        self.packed, self.n, self.cycles = packed, n, cycles

    def __call__(self, first: int = 0, last: int | None = None, buffer: str | None = None):
        """Clusters first..last-1 (first even for packed calls) x every cycle; in the
        process's scratch buffer of that name when buffer is given."""
        last = self.n if last is None else last
        if not 0 <= first <= last <= self.n or (self.packed and first % 2):
            raise ValueError(f"clusters {first}..{last} are not a range of the tile")
        n, cycles = last - first, self.cycles
        if buffer:
            out = scratch(buffer, n * cycles).reshape(n, cycles)
        else:
            out = np.empty((n, cycles), dtype=np.uint8)
        if n and cycles:
            status = library().cluster_range(
                self.pointers.ctypes.data,
                None if self.tables is None else self.tables.ctypes.data,
                None if self.pairs is None else self.pairs.ctypes.data,
                None if self.table_of is None else self.table_of.ctypes.data,
                1 if self.packed else 0,
                first,
                n,
                cycles,
                out.ctypes.data,
            )
            if status:
                raise MemoryError("cannot transpose the tile's calls")
        return out


def cluster_major(
    sources: list[np.ndarray],
    tables: np.ndarray | None,
    packed: bool,
    n: int,
    reuse: bool = False,
    table_of: np.ndarray | None = None,
):
    """(clusters x cycles) BCL bytes from per-cycle arrays (see the C comment), or
    None when the compiled library is not available. tables: one 256-byte table per
    cycle, or a few shared ones with table_of giving each cycle's (a few stay in the
    fastest cache, one per cycle would not). With reuse, the array is the process's
    scratch buffer, overwritten by the next call with reuse."""
    if library() is None:
        return None
    return Transposer(sources, tables, packed, n, table_of)(buffer="calls" if reuse else None)


MAX_OUTPUTS = 16
MAX_NAME = 100  # prefix bytes the C loop's name buffer leaves room for (with x, y)


def digits(values: np.ndarray) -> np.ndarray:
    """Decimal digits of each value as the C loop writes it (negatives as 0)."""
    values = np.maximum(np.asarray(values, dtype=np.int64), 0)
    count = np.ones(len(values), dtype=np.int64)
    power, top = 10, int(values.max()) if len(values) else 0
    while power <= top:
        count += values >= power
        power *= 10
    return count


def fastq_records(
    calls,
    reads: list[tuple[slice, bytes]],
    prefix: bytes,
    x: np.ndarray,
    y: np.ndarray,
    flag: np.ndarray,
    index_spans: list[slice],
    rows: np.ndarray | None = None,
    group: np.ndarray | None = None,
    groups: int = 1,
    reuse: bool = False,
    chunk: int = 4096,
):
    """FASTQ text for the records of calls[rows] (every row when rows is None), one
    per (bases, name's " <read>:") in reads, each record placed with its group's
    (group[i] in 0..groups-1; all in group 0 when None) in rows' order: a list of
    (text, group offsets (groups + 1: group g is text[offsets[g]:offsets[g + 1]]),
    Q30 bases per record, quality sum per record), or None when the compiled library
    is not available (or the layout is beyond it). x, y and flag are in rows' order.
    With reuse, the texts are views of the process's scratch buffers, overwritten by
    the next call with reuse.

    calls is the tile's clusters x cycles array, or a Transposer: then the tile is
    turned cluster-major `chunk` clusters at a time, each range written out while it
    is still in cache (rows must be ascending), and no whole-tile array is made."""
    lib = library()
    index_len = sum(s.stop - s.start for s in index_spans) + max(len(index_spans) - 1, 0)
    if (
        lib is None
        or not 0 < len(reads) <= MAX_OUTPUTS
        or len(prefix) > MAX_NAME
        or index_len > 150
        or any(len(middle) > 32 for _, middle in reads)
    ):
        return None
    if isinstance(calls, Transposer):
        if chunk <= 0 or chunk % 2:
            raise ValueError("chunk must be a positive even number of clusters")
        transposer, count, width = calls, calls.n, calls.cycles
    else:
        transposer = None
        calls = np.ascontiguousarray(calls, dtype=np.uint8)
        count, width = calls.shape
    if rows is not None:
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        n = len(rows)
        if n and (rows.min() < 0 or rows.max() >= count):
            raise ValueError("rows outside the tile")
        if transposer is not None and n and (np.diff(rows) <= 0).any():
            raise ValueError("rows must be ascending to be written a range at a time")
    else:
        n = count
        if transposer is not None:
            rows = np.arange(count, dtype=np.int64)
    for span in [seq for seq, _ in reads] + index_spans:
        if not 0 <= span.start <= span.stop <= width:
            raise ValueError("a read's cycles lie outside the calls")
    x = np.ascontiguousarray(x, dtype=np.int64)
    y = np.ascontiguousarray(y, dtype=np.int64)
    flag = np.ascontiguousarray(flag, dtype=np.uint8).reshape(-1)
    if group is None:
        group = np.zeros(n, dtype=np.int64)
    group = np.ascontiguousarray(group, dtype=np.int64)
    if not (len(x) == len(y) == len(flag) == len(group) == n):
        raise ValueError("x, y, flag and group must have one value per record")
    if n and not 0 <= group.min() <= group.max() < groups:
        raise ValueError("group outside 0..groups-1")
    per_group = np.bincount(group, minlength=groups).astype(np.int64)
    names = np.bincount(group, weights=digits(x) + digits(y), minlength=groups).astype(np.int64)
    keep = []  # every buffer the C loop writes or reads, alive until it returns
    texts, starts, cursors, limits, q30, qsum, middles = [], [], [], [], [], [], []
    for number, (seq, middle) in enumerate(reads):
        seq_len = seq.stop - seq.start
        fixed = len(prefix) + 1 + len(middle) + 4 + index_len + 1 + 2 * seq_len + 4
        offsets = np.zeros(groups + 1, dtype=np.int64)
        np.cumsum(per_group * fixed + names, out=offsets[1:])
        size = int(offsets[-1])
        texts.append(scratch(f"text{number}", size) if reuse else np.empty(size, np.uint8))
        starts.append(offsets)
        cursors.append(offsets[:-1].copy())
        limits.append(np.ascontiguousarray(offsets[1:]))
        q30.append(np.empty(n, dtype=np.int64))
        qsum.append(np.empty(n, dtype=np.int64))
        middles.append(np.frombuffer(middle, dtype=np.uint8))

    def pointers(arrays):
        table = np.array([a.ctypes.data for a in arrays], dtype=np.uintp)
        keep.append(table)
        return table.ctypes.data

    index_starts = np.array([s.start for s in index_spans] or [0], dtype=np.int64)
    lengths = np.array([s.stop - s.start for s in index_spans] or [0], dtype=np.int64)
    seq_starts = np.array([seq.start for seq, _ in reads], dtype=np.int64)
    seq_lens = np.array([seq.stop - seq.start for seq, _ in reads], dtype=np.int64)
    middle_lens = np.array([len(middle) for _, middle in reads], dtype=np.int64)
    prefix_buffer = np.frombuffer(prefix, dtype=np.uint8)
    texts_at, cursors_at, limits_at = pointers(texts), pointers(cursors), pointers(limits)
    middles_at = pointers(middles)

    def write(block: np.ndarray, block_rows, lo: int, hi: int) -> int:
        """Records lo..hi-1, their rows in block (block_rows, or lo..hi-1 when None)."""
        picked = [a[lo:] for a in q30], [a[lo:] for a in qsum]
        return lib.fastq_records(
            block.ctypes.data, None if block_rows is None else block_rows.ctypes.data,
            hi - lo, width, group[lo:].ctypes.data,
            prefix_buffer.ctypes.data, len(prefix),
            x[lo:].ctypes.data, y[lo:].ctypes.data, flag[lo:].ctypes.data,
            index_starts.ctypes.data, lengths.ctypes.data, len(index_spans),
            len(reads), seq_starts.ctypes.data, seq_lens.ctypes.data, middles_at,
            middle_lens.ctypes.data, texts_at, cursors_at, limits_at,
            pointers(picked[0]), pointers(picked[1]),
        )  # fmt: skip

    status = 0
    if transposer is None:
        status = write(calls, rows, 0, n)
    else:
        bounds = np.searchsorted(rows, np.arange(0, count + chunk, chunk))
        for number, first in enumerate(range(0, count, chunk)):
            lo, hi = int(bounds[number]), int(bounds[number + 1])
            if hi > lo and status == 0:
                block = transposer(first, min(first + chunk, count), buffer="chunk")
                status = write(block, rows[lo:hi] - first, lo, hi)
    if status != 0 or any(not np.array_equal(c, e) for c, e in zip(cursors, limits, strict=True)):
        raise RuntimeError("FASTQ records did not fill the space laid out for them")
    return [
        (text, offsets, good, total)
        for text, offsets, good, total in zip(texts, starts, q30, qsum, strict=True)
    ]
