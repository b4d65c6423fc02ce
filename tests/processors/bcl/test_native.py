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
