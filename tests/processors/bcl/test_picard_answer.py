"""The built-in converter against Picard's own answer on real base calls.

tests/data/illumina/picard_25T8B25T holds three tiles of real per-tile BCL from
Picard's test data with the FASTQs Picard's IlluminaBasecallsToFastq wrote from
them (its README says how). The run folder is wrapped with a RunInfo.xml and a
sample sheet built from Picard's mp_barcode.params, and converted with Picard's
rules: non-PF reads included, at most one mismatch, a best match one mismatch
better than the next, at most two no-calls, Picard's read names (run "HiMom",
the matched barcode in the comment) and its EAMSS quality masking.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from demo.picard_run import PICARD, picard_barcodes
from processors.bcl.barcodes import PicardRules
from processors.bcl.convert import ConvertOptions, convert_run

RUN_INFO = """<?xml version="1.0"?>
<RunInfo Version="2"><Run Id="picard_25T8B25T" Number="1">
<Flowcell>abcdeACXX</Flowcell><Instrument>machine1</Instrument><Date>2012-01-01</Date>
<Reads><Read Number="1" NumCycles="25" IsIndexedRead="N"/>
<Read Number="2" NumCycles="8" IsIndexedRead="Y"/>
<Read Number="3" NumCycles="25" IsIndexedRead="N"/></Reads>
<FlowcellLayout LaneCount="1" SurfaceCount="2" SwathCount="1" TileCount="1">
<TileSet><Tiles><Tile>1_1101</Tile><Tile>1_1201</Tile><Tile>1_2101</Tile></Tiles></TileSet>
</FlowcellLayout></Run></RunInfo>
"""


def records(path: Path) -> list[tuple[str, str, str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as stream:
        lines = stream.read().split("\n")
    assert lines[-1] == "", f"{path.name} does not end with a newline"
    out = []
    for i in range(0, len(lines) - 1, 4):
        assert lines[i].startswith("@") and lines[i + 2] == "+", f"{path.name} is not FASTQ"
        out.append((lines[i], lines[i + 1], lines[i + 3]))
    return out


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> tuple[Path, object]:
    run = tmp_path_factory.mktemp("run")
    shutil.copytree(PICARD / "Data", run / "Data")
    (run / "RunInfo.xml").write_text(RUN_INFO)
    rows = [f"{code.replace('.', 'N')},{code.replace('.', 'N')}" for code in picard_barcodes()]
    (run / "SampleSheet.csv").write_text(
        "[Header]\nFileFormatVersion,2\n[BCLConvert_Settings]\n[BCLConvert_Data]\n"
        "Sample_ID,index\n" + "\n".join(rows) + "\n"
    )
    out = tmp_path_factory.mktemp("out")
    options = ConvertOptions(
        picard=PicardRules(max_mismatches=1, min_mismatch_delta=1, max_no_calls=2),
        include_non_pf=True,
        run_name="HiMom",
        threads=2,
    )
    return out, convert_run(run, out, None, options)


def test_every_sample_and_the_undetermined_reads_are_picards(converted):
    """Picard sorts its output by read name, the converter writes in cluster order:
    the converter's records sorted by name must equal Picard's file, record by record."""
    out, report = converted
    stems = {code: code.replace(".", "N") for code in picard_barcodes()}
    numbers = {row["sample_id"]: row["sample_number"] for row in report.samples}
    pairs = [("N", "Undetermined_S0")] + [
        (code, f"{stem}_S{numbers[stem]}") for code, stem in stems.items()
    ]
    compared = 0
    for expected_stem, mine_stem in pairs:
        for expected_suffix, key in (("1", "R1"), ("2", "R2"), ("barcode_1", "I1")):
            expected = records(PICARD / "fastq" / f"{expected_stem}.{expected_suffix}.fastq")
            assert [r[0] for r in expected] == sorted(r[0] for r in expected)
            mine = records(out / f"{mine_stem}_L001_{key}_001.fastq.gz")
            assert sorted(mine) == expected, f"{mine_stem} {key} differs from Picard"
            compared += len(expected)
    everything = records(PICARD / "fastq" / "nonBarcoded.1.fastq")
    assert compared == 3 * len(everything) == 3 * 180
    assert report.clusters_written == 180 and report.clusters == 180


def test_the_reports_count_what_was_written(converted):
    out, report = converted
    undetermined = [row for row in report.samples if row["sample_id"] == "Undetermined"]
    assert undetermined[0]["reads"] == len(records(PICARD / "fastq" / "N.1.fastq"))
    assert sum(row["reads"] for row in report.samples) == 180
    stats = (out / "Reports" / "Demultiplex_Stats.csv").read_text().splitlines()
    assert stats[0].startswith("Lane,SampleID,Sample_Project,Index,# Reads,")
    assert len(stats) == 1 + len(picard_barcodes()) + 1
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
