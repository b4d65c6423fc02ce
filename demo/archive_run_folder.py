"""Generated Illumina run folders for the run archive's tests and benchmark: the
layout of a per-tile BCL instrument (MiSeq, HiSeq), with base calls that
compress like real ones do (random bases, a few binned quality values, some
no-calls), not like zeros.

    Data/Intensities/BaseCalls/L00<lane>/C<cycle>.1/s_<lane>_<tile>.bcl
    Data/Intensities/BaseCalls/L00<lane>/s_<lane>_<tile>.filter
    InterOp/*.bin, Thumbnail_Images/L00<lane>/C<cycle>.1/s_<lane>_<tile>_<channel>.jpg
    RunInfo.xml, runParameters.xml, SampleSheet.csv, RTAComplete.txt

The bulk (base calls, filters, thumbnails, InterOp) is written here; the files
about the run come from demo.illumina_run's MiSeq layout, as the survey's
tests and the demo write them.
"""

from __future__ import annotations

import dataclasses
import random
import struct
from datetime import UTC, datetime
from pathlib import Path

from demo.illumina_run import LAYOUTS, add_sample_sheet, finish_run, run_info_xml

# One BCL byte: bits 0-1 the base, bits 2-7 the quality; a zero byte is a no-call.
# Qualities binned as NovaSeq/HiSeq X do (2, 12, 23, 37), mostly high.
_QUALITY_OF = [0] + [2] * 2 + [12] * 5 + [23] * 12 + [37] * 44  # indexed by 6 random bits
BCL_TABLE = bytes(
    0 if _QUALITY_OF[i >> 2] == 0 else (_QUALITY_OF[i >> 2] << 2) | (i & 3) for i in range(256)
)

FILTER_TABLE = bytes(1 if i < 205 else 0 for i in range(256))  # 80% pass the filter
WHEN = datetime(2023, 1, 1, 9, 30, tzinfo=UTC)


def base_calls(rng: random.Random, clusters: int) -> bytes:
    return rng.randbytes(clusters).translate(BCL_TABLE)


def write_run_folder(
    parent: Path,
    run_id: str = "230101_M01234_0042_000000000-ABCDE",
    lanes: int = 1,
    tiles_per_lane: int = 4,
    cycles: int = 50,
    clusters: int = 400,
    thumbnails: bool = True,
    seed: int = 1,
) -> Path:
    """A complete run folder `parent/run_id`; its size is about
    lanes * tiles * cycles * clusters bytes of base calls."""
    rng = random.Random(seed)
    root = parent / run_id
    calls = root / "Data" / "Intensities" / "BaseCalls"
    tiles = [
        f"{lane}_{1100 + t + 1}" for lane in range(1, lanes + 1) for t in range(tiles_per_lane)
    ]
    for lane in range(1, lanes + 1):
        lane_dir = calls / f"L00{lane}"
        lane_tiles = [t.split("_")[1] for t in tiles if t.startswith(f"{lane}_")]
        for cycle in range(1, cycles + 1):
            cycle_dir = lane_dir / f"C{cycle}.1"
            cycle_dir.mkdir(parents=True)
            for tile in lane_tiles:
                body = struct.pack("<I", clusters) + base_calls(rng, clusters)
                (cycle_dir / f"s_{lane}_{tile}.bcl").write_bytes(body)
                if thumbnails and cycle <= 2:
                    thumbs = root / "Thumbnail_Images" / f"L00{lane}" / f"C{cycle}.1"
                    thumbs.mkdir(parents=True, exist_ok=True)
                    for channel in "acgt":
                        name = f"s_{lane}_{tile}_{channel}.jpg"
                        (thumbs / name).write_bytes(b"\xff\xd8\xff" + rng.randbytes(256))
        for tile in lane_tiles:
            passed = rng.randbytes(clusters).translate(FILTER_TABLE)
            header = struct.pack("<III", 0, 3, clusters)
            (lane_dir / f"s_{lane}_{tile}.filter").write_bytes(header + passed)
    interop = root / "InterOp"
    interop.mkdir()
    for name in ("ErrorMetricsOut.bin", "QMetricsOut.bin", "TileMetricsOut.bin"):
        (interop / name).write_bytes(rng.randbytes(2048))
    # The files a MiSeq writes about the run, as demo.illumina_run writes them.
    half = cycles // 2
    layout = dataclasses.replace(
        LAYOUTS["miseq"],
        flowcell=run_id.rsplit("_", 1)[-1],
        lanes=lanes,
        reads=((half, False), (cycles - half, False)),
    )
    tile_numbers = tuple(1100 + t + 1 for t in range(tiles_per_lane))
    (root / "RunInfo.xml").write_text(run_info_xml(layout, run_id, 42, WHEN, tile_numbers))
    (root / layout.run_parameters_name).write_text(
        layout.run_parameters.format(instrument=layout.instrument_id)
    )
    add_sample_sheet(root, layout)
    finish_run(root, layout)
    return root
