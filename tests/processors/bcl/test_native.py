"""The compiled record loop (processors/bcl/native.py) and the numpy path write the
same FASTQ bytes and the same figures; without a C compiler the converter uses
numpy alone."""

from __future__ import annotations

import gzip
import shutil

import numpy as np

from processors.bcl import native
from processors.bcl.convert import ConvertOptions, convert_run
from tests.processors.bcl.runs import make_tiles, write_run
from tests.processors.bcl.test_generated_runs import DUAL, DUAL_READS, sheet_text


def convert(tmp_path, name, monkeypatch, enabled: bool):
    monkeypatch.setenv("REFINERY_BCL_NATIVE", "1" if enabled else "0")
    monkeypatch.setattr(native, "_TRIED", False)
    monkeypatch.setattr(native, "_LIBRARY", None)
    report = convert_run(tmp_path / "run", tmp_path / name, None, ConvertOptions(threads=1))
    used = native.library() is not None
    files = {
        path.name: gzip.decompress(path.read_bytes())
        for path in sorted((tmp_path / name).glob("*.fastq.gz"))
    }
    return report, files, used


def test_compiled_and_numpy_paths_agree(tmp_path, monkeypatch):
    rng = np.random.default_rng(41)
    barcodes = [(i7, i5) for _, i7, i5, _ in DUAL]
    tiles = make_tiles(rng, 1, [1101, 2101], 500, DUAL_READS, barcodes, nocall_rate=0.03)
    tiles[0].x[:5] = 0.0  # one-digit-shorter names next to longer ones
    run = write_run(tmp_path / "run", "bcl", DUAL_READS, tiles, 1)
    (run / "SampleSheet.csv").write_text(sheet_text(DUAL))
    fast, fast_files, used = convert(tmp_path, "fast", monkeypatch, True)
    slow, slow_files, unused = convert(tmp_path, "slow", monkeypatch, False)
    assert used is (shutil.which("cc") is not None)
    assert unused is False
    assert fast_files == slow_files and len(fast_files) == 6
    assert fast.samples == slow.samples
    for name in ("Demultiplex_Stats.csv", "Quality_Metrics.csv", "Top_Unknown_Barcodes.csv"):
        assert (tmp_path / "fast/Reports" / name).read_text() == (
            tmp_path / "slow/Reports" / name
        ).read_text()


def test_compiled_transposition_matches_numpy(monkeypatch):
    """cluster_major (CBCL nibbles through each cycle's bins, BCL bytes as they are)
    gives numpy's answer, for cluster and cycle counts that are not multiples of the
    loop's 8 x 8 blocks."""
    monkeypatch.setattr(native, "_TRIED", False)
    monkeypatch.setattr(native, "_LIBRARY", None)
    if native.library() is None:
        assert shutil.which("cc") is None  # no compiler: numpy alone, nothing to compare
        return
    rng = np.random.default_rng(5)
    for n, cycles in ((1, 1), (7, 9), (8, 8), (37, 21), (1001, 318)):
        tables = rng.integers(0, 256, (cycles, 256), dtype=np.uint8)
        packed = [rng.integers(0, 256, (n + 1) // 2, dtype=np.uint8) for _ in range(cycles)]
        nibbles = np.stack([np.stack([p & 15, p >> 4], axis=1).reshape(-1)[:n] for p in packed])
        expected = np.take_along_axis(tables, nibbles.astype(np.intp), axis=1).T
        assert np.array_equal(native.cluster_major(packed, tables, True, n), expected)
        plain = [rng.integers(0, 256, n, dtype=np.uint8) for _ in range(cycles)]
        assert np.array_equal(native.cluster_major(plain, None, False, n), np.stack(plain).T)
        mapped = np.take_along_axis(tables, np.stack(plain).astype(np.intp), axis=1).T
        assert np.array_equal(native.cluster_major(plain, tables, False, n), mapped)
        again = native.cluster_major(plain, None, False, n, reuse=True)
        assert np.array_equal(again, np.stack(plain).T)
    native.release_scratch()


def test_records_written_a_range_at_a_time_match_the_whole_tile(monkeypatch):
    """fastq_records given a Transposer (the tile turned cluster-major a range of
    clusters at a time, records placed by sample) writes what it writes from the
    whole clusters x cycles array: same text, sample offsets and figures."""
    monkeypatch.setattr(native, "_TRIED", False)
    monkeypatch.setattr(native, "_LIBRARY", None)
    if native.library() is None:
        assert shutil.which("cc") is None
        return
    rng = np.random.default_rng(8)
    n, cycles = 1003, 40
    tables = rng.integers(0, 256, (2, 256), dtype=np.uint8)
    table_of = rng.integers(0, 2, cycles)
    packed = [rng.integers(0, 256, (n + 1) // 2, dtype=np.uint8) for _ in range(cycles)]
    transposer = native.Transposer(packed, tables, True, n, table_of)
    rows = np.flatnonzero(rng.random(n) < 0.8)  # gaps, as non-PF clusters leave
    group = rng.integers(0, 5, len(rows))
    x, y = rng.integers(0, 30000, len(rows)), rng.integers(0, 300, len(rows))
    flag = np.full(len(rows), ord("N"), np.uint8)
    reads = [(slice(0, 15), b" 1:"), (slice(22, 40), b" 2:")]
    spans = [slice(15, 19), slice(19, 22)]
    args = (reads, b"@M:1:FC:1:1101:", x, y, flag, spans)
    whole = native.fastq_records(transposer(), *args, rows=rows, group=group, groups=5)
    ranged = native.fastq_records(transposer, *args, rows=rows, group=group, groups=5, chunk=64)
    for (text, offsets, q30, qsum), (text2, offsets2, q302, qsum2) in zip(
        whole, ranged, strict=True
    ):
        assert text.tobytes() == text2.tobytes() and len(text) > 40_000
        assert np.array_equal(offsets, offsets2)
        assert np.array_equal(q30, q302) and np.array_equal(qsum, qsum2)
    native.release_scratch()


def test_a_missing_or_broken_c_source_leaves_the_numpy_path(tmp_path, monkeypatch):
    """An install without native.c (package data left out), or a source the
    compiler refuses: no library, no error; the converter goes on with numpy."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for source in (tmp_path / "absent.c", tmp_path / "broken.c"):
        if source.name == "broken.c":
            source.write_text("this is not C {\n")
        monkeypatch.setattr(native, "SOURCE_PATH", source)
        monkeypatch.setattr(native, "_TRIED", False)
        monkeypatch.setattr(native, "_LIBRARY", None)
        assert native.library() is None, source.name
    assert not list((tmp_path / "cache").rglob("*.so"))  # nothing half-built kept
