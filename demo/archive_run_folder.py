"""Generated Illumina run folders for the run archive's tests and benchmark: the
layout of a per-tile BCL instrument (MiSeq, HiSeq), with base calls that
compress like real ones do (random bases, a few binned quality values, some
no-calls), not like zeros.

    Data/Intensities/BaseCalls/L00<lane>/C<cycle>.1/s_<lane>_<tile>.bcl
    Data/Intensities/BaseCalls/L00<lane>/s_<lane>_<tile>.filter
    InterOp/*.bin, Thumbnail_Images/L00<lane>/C<cycle>.1/s_<lane>_<tile>_<channel>.jpg
    RunInfo.xml, RunParameters.xml, SampleSheet.csv, RTAComplete.txt, CopyComplete.txt
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

# One BCL byte: bits 0-1 the base, bits 2-7 the quality; a zero byte is a no-call.
# Qualities binned as NovaSeq/HiSeq X do (2, 12, 23, 37), mostly high.
_QUALITY_OF = [0] + [2] * 2 + [12] * 5 + [23] * 12 + [37] * 44  # indexed by 6 random bits
BCL_TABLE = bytes(
    0 if _QUALITY_OF[i >> 2] == 0 else (_QUALITY_OF[i >> 2] << 2) | (i & 3) for i in range(256)
)

FILTER_TABLE = bytes(1 if i < 205 else 0 for i in range(256))  # 80% pass the filter


def base_calls(rng: random.Random, clusters: int) -> bytes:
    return rng.randbytes(clusters).translate(BCL_TABLE)


def run_info_xml(run_id: str, lanes: int, tiles: list[str], cycles: int) -> str:
    flowcell = run_id.rsplit("_", 1)[-1][1:]
    half = cycles // 2
    tile_entries = "".join(f"<Tile>{t}</Tile>" for t in tiles)
    return (
        '<?xml version="1.0"?>\n<RunInfo Version="2">\n'
        f'  <Run Id="{run_id}" Number="42">\n    <Flowcell>{flowcell}</Flowcell>\n'
        "    <Instrument>M01234</Instrument>\n    <Date>230101</Date>\n    <Reads>\n"
        f'      <Read Number="1" NumCycles="{half}" IsIndexedRead="N" />\n'
        f'      <Read Number="2" NumCycles="{cycles - half}" IsIndexedRead="N" />\n'
        f'    </Reads>\n    <FlowcellLayout LaneCount="{lanes}" SurfaceCount="1" '
        f'SwathCount="1" TileCount="{len(tiles) // lanes}">\n'
        f'      <TileSet TileNamingConvention="FourDigit"><Tiles>{tile_entries}</Tiles></TileSet>\n'
        "    </FlowcellLayout>\n  </Run>\n</RunInfo>\n"
    )


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
    (root / "RunInfo.xml").write_text(run_info_xml(run_id, lanes, tiles, cycles))
    (root / "RunParameters.xml").write_text(
        '<?xml version="1.0"?>\n<RunParameters><ScannerID>M01234</ScannerID>'
        f"<RunID>{run_id}</RunID></RunParameters>\n"
    )
    (root / "SampleSheet.csv").write_text(
        "[Header]\nIEMFileVersion,4\n\n[Data]\nSample_ID,Sample_Name,index\nS1,S1,ACGTACGT\n"
    )
    (root / "RTAComplete.txt").write_text("RTA 1.18.54 complete\n")
    (root / "CopyComplete.txt").write_text("")
    return root
