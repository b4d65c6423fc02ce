"""A finished MiSeq run folder around real base calls: Picard's 25T8B25T test
data (tests/data/illumina/picard_25T8B25T, MIT licence, its README says where
it comes from), with a RunInfo.xml, a v2 sample sheet of Picard's barcodes and
the completion marker. The demo demultiplexes it; the tests check the
pipeline on it."""

from __future__ import annotations

import shutil
from pathlib import Path

PICARD = Path(__file__).resolve().parent.parent / "tests" / "data" / "illumina" / "picard_25T8B25T"
RUN_ID = "120101_M00001_0001_000000000-ABCDE"

RUN_INFO = """<?xml version="1.0"?>
<RunInfo Version="2"><Run Id="{run_id}" Number="1">
<Flowcell>000000000-ABCDE</Flowcell><Instrument>M00001</Instrument><Date>2012-01-01</Date>
<Reads><Read Number="1" NumCycles="25" IsIndexedRead="N"/>
<Read Number="2" NumCycles="8" IsIndexedRead="Y"/>
<Read Number="3" NumCycles="25" IsIndexedRead="N"/></Reads>
<FlowcellLayout LaneCount="1" SurfaceCount="2" SwathCount="1" TileCount="1">
<TileSet><Tiles><Tile>1_1101</Tile><Tile>1_1201</Tile><Tile>1_2101</Tile></Tiles></TileSet>
</FlowcellLayout></Run></RunInfo>
"""


def picard_barcodes() -> list[str]:
    """The barcodes Picard demultiplexed the data with (`.` for a no-call)."""
    lines = (PICARD / "fastq" / "mp_barcode.params").read_text().splitlines()[1:]
    return [line.split("\t")[0] for line in lines if line and line.split("\t")[0] != "N"]


def write_picard_run(share: Path, sheet_rows: list[str] | None = None) -> Path:
    """`share/<run id>/`: the base calls, RunInfo.xml, a sample sheet (rows of
    `Sample_ID,index,Sample_Project`; by default one sample per Picard barcode)
    and RTAComplete.txt. Picard's barcodes are one mismatch apart, so the sheet
    allows none (`BarcodeMismatchesIndex1,0`), as BCL Convert requires."""
    folder = Path(share) / RUN_ID
    shutil.copytree(PICARD / "Data", folder / "Data")
    (folder / "RunInfo.xml").write_text(RUN_INFO.format(run_id=RUN_ID))
    codes = [code.replace(".", "N") for code in picard_barcodes()]
    rows = sheet_rows or [f"S{n},{code},demo" for n, code in enumerate(codes, start=1)]
    (folder / "SampleSheet.csv").write_text(
        "[Header]\nFileFormatVersion,2\n[BCLConvert_Settings]\nBarcodeMismatchesIndex1,0\n"
        "[BCLConvert_Data]\nSample_ID,index,Sample_Project\n" + "\n".join(rows) + "\n"
    )
    (folder / "RTAComplete.txt").write_text("RTA complete\n")
    return folder
