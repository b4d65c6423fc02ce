"""The run folders bench/demultiplex.py converts: 2 x 151 + 8 + 8 cycles, CBCL
or per-tile BCL, synthetic calls for random barcodes at least 3 apart (the
writers are the tests' own, tests/processors/bcl/runs.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.processors.bcl.runs import (
    Tile,
    positions,
    run_info_xml,
    synthetic_calls,
    write_bcl_tiles,
    write_cbcl_lane,
    write_locs,
    write_positions,
)

READS = [(151, False), (8, True), (8, True), (151, False)]


def barcodes(rng: np.random.Generator, count: int, length: int = 8) -> list[str]:
    """Random barcodes at least 3 apart, so one mismatch per index never collides."""
    chosen: list[str] = []
    while len(chosen) < count:
        code = "".join(rng.choice(list("ACGT"), length))
        if all(sum(a != b for a, b in zip(code, other, strict=True)) >= 3 for other in chosen):
            chosen.append(code)
    return chosen


def tile_numbers(per_lane: int) -> list[int]:
    half = max(per_lane // 2, 1)
    numbers = [1101 + i for i in range(half)] + [2101 + i for i in range(per_lane - half)]
    return numbers[:per_lane]


def generate(run: Path, fmt: str, lanes: int, per_lane: int, clusters: int, samples) -> None:
    rng = np.random.default_rng(2024)
    per_tile = clusters // (lanes * per_lane)
    numbers = tile_numbers(per_lane)
    names = [f"{lane}_{t}" for lane in range(1, lanes + 1) for t in numbers]
    run.mkdir(parents=True)
    (run / "RunInfo.xml").write_text(
        run_info_xml(READS, lanes, names, instrument="A01234", flowcell="HBENCHDSX5")
    )
    x, y = positions(rng, per_tile)
    if fmt == "cbcl":
        write_locs(run / "Data" / "Intensities" / "s.locs", x, y)
    for lane in range(1, lanes + 1):
        tiles = []
        for number in numbers:
            calls, _ = synthetic_calls(
                rng, per_tile, READS, samples, nocall_rate=0.005, unknown_rate=0.05
            )
            passed = rng.random(per_tile) < 0.9
            tile = Tile(lane, number, calls, passed, x, y)
            if fmt == "bcl":
                write_bcl_tiles(run, [tile])
                write_positions(run, tile, "locs")
            else:
                tiles.append(tile)
        if fmt == "cbcl":
            write_cbcl_lane(run, lane, tiles, exclude_non_pf=True)
    rows = [f"S{i + 1},{i7},{i5}" for i, (i7, i5) in enumerate(samples)]
    (run / "SampleSheet.csv").write_text(
        "[Header]\nFileFormatVersion,2\n[BCLConvert_Settings]\n[BCLConvert_Data]\n"
        "Sample_ID,index,index2\n" + "\n".join(rows) + "\n"
    )
