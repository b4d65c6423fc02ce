"""Damaged run folders and sample sheets a converter would refuse: each fails with a
ConversionError naming the file (or the sheet's line), and the output folder holds
nothing afterwards (no FASTQ, no report, no staging folder)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from processors.bcl.convert import ConvertOptions, convert_run
from processors.bcl.errors import ConversionError
from processors.bcl.sample_sheet import parse_sample_sheet
from tests.processors.bcl.runs import make_tiles, write_run
from tests.processors.bcl.test_generated_runs import DUAL, DUAL_READS, sheet_text

REPOSITORY = Path(__file__).resolve().parents[3]


def build(tmp_path: Path, fmt: str, positions_kind: str = "locs") -> Path:
    rng = np.random.default_rng(21)
    barcodes = [(i7, i5) for _, i7, i5, _ in DUAL]
    tiles = make_tiles(rng, 1, [1101, 1102], 120, DUAL_READS, barcodes)
    if positions_kind == "slocs":
        for tile in tiles[1:]:
            tile.x, tile.y = tiles[0].x, tiles[0].y
    run = write_run(tmp_path / "run", fmt, DUAL_READS, tiles, 1, positions_kind)
    (run / "SampleSheet.csv").write_text(sheet_text(DUAL))
    return run


def refuse(run: Path, out: Path, *, threads: int = 2) -> str:
    out.mkdir(exist_ok=True)
    with pytest.raises(ConversionError) as caught:
        convert_run(run, out, None, ConvertOptions(threads=threads))
    assert list(out.iterdir()) == [], "a refused conversion left files behind"
    return str(caught.value)


def test_truncated_bcl(tmp_path):
    run = build(tmp_path, "bcl")
    path = run / "Data/Intensities/BaseCalls/L001/C30.1/s_1_1102.bcl"
    path.write_bytes(path.read_bytes()[:-7])
    message = refuse(run, tmp_path / "out")
    assert "C30.1/s_1_1102.bcl" in message and "truncated" in message


def test_truncated_bcl_gz(tmp_path):
    run = build(tmp_path, "bcl.gz")
    path = run / "Data/Intensities/BaseCalls/L001/C3.1/s_1_1101.bcl.gz"
    path.write_bytes(path.read_bytes()[:-12])
    message = refuse(run, tmp_path / "out")
    assert "C3.1/s_1_1101.bcl.gz" in message


def test_truncated_cbcl(tmp_path):
    run = build(tmp_path, "cbcl", "slocs")
    path = run / "Data/Intensities/BaseCalls/L001/C12.1/L001_1.cbcl"
    path.write_bytes(path.read_bytes()[:-20])
    message = refuse(run, tmp_path / "out")
    assert "C12.1/L001_1.cbcl" in message and "truncated" in message


def test_truncated_bgzf(tmp_path):
    run = build(tmp_path, "bgzf")
    path = run / "Data/Intensities/BaseCalls/L001/0040.bcl.bgzf"
    path.write_bytes(path.read_bytes()[:-60])
    message = refuse(run, tmp_path / "out")
    assert "0040.bcl.bgzf" in message


def test_tile_missing_from_one_cycle(tmp_path):
    run = build(tmp_path, "bcl")
    (run / "Data/Intensities/BaseCalls/L001/C17.1/s_1_1102.bcl").unlink()
    message = refuse(run, tmp_path / "out")
    assert "C17.1/s_1_1102.bcl" in message and "missing from cycle 17" in message


def test_filter_count_disagrees_with_the_base_calls(tmp_path):
    run = build(tmp_path, "bcl")
    path = run / "Data/Intensities/BaseCalls/L001/s_1_1101.filter"
    data = bytearray(path.read_bytes())
    data[8:12] = (119).to_bytes(4, "little")
    path.write_bytes(bytes(data[:-1]))
    message = refuse(run, tmp_path / "out")
    assert "s_1_1101" in message and "119" in message


def test_cbcl_tile_count_disagrees_with_the_filter(tmp_path):
    run = build(tmp_path, "cbcl", "slocs")
    path = run / "Data/Intensities/BaseCalls/L001/C9.1/L001_1.cbcl"
    data = bytearray(path.read_bytes())
    # The second tile record (1102) starts at byte 64: clusters, then unpacked size.
    assert int.from_bytes(data[64:68], "little") == 1102
    data[68:72] = (118).to_bytes(4, "little")
    data[72:76] = (59).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    message = refuse(run, tmp_path / "out")
    assert "C9.1/L001_1.cbcl" in message and "tile 1102 has 118 clusters" in message


def test_sample_sheet_collision_names_the_line(tmp_path):
    run = build(tmp_path, "bcl")
    samples = [*DUAL, ("S_three", "ACGTACGA", "AAACCCGA", None)]
    (run / "SampleSheet.csv").write_text(sheet_text(samples))
    message = refuse(run, tmp_path / "out")
    assert "line 10" in message and "collides with ACGTACGT+AAACCCGT on line 8" in message
    # With no mismatches allowed the same sheet is fine.
    (run / "SampleSheet.csv").write_text(
        sheet_text(samples, "BarcodeMismatchesIndex1,0\nBarcodeMismatchesIndex2,0\n")
    )
    report = convert_run(run, tmp_path / "ok", None, ConvertOptions())
    assert report.settings["barcode_mismatches"] == [0, 0]


def test_index_longer_than_the_index_read(tmp_path):
    run = build(tmp_path, "bcl")
    samples = [("S_one", "ACGTACGTAC", "AAACCCGT", None)]
    (run / "SampleSheet.csv").write_text(sheet_text(samples))
    message = refuse(run, tmp_path / "out")
    assert "line 8" in message and "10 bases" in message and "8 cycles" in message


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ("Sample_ID,index\nA,ACGT\nA,TTTT\n", ["line 7", "appears twice"]),
        ("Sample_ID,index\nA b,ACGT\n", ["line 6", "Sample_ID 'A b'"]),
        ("Sample_ID,index\nA,ACGX\n", ["line 6", "index 'ACGX'"]),
        ("Sample_ID,index\nA,ACGT\nB,ACGT\n", ["line 7", "also on line 6"]),
    ],
)
def test_sheets_a_converter_rejects(data, words):
    text = "[Header]\nFileFormatVersion,2\n[BCLConvert_Settings]\n[BCLConvert_Data]\n" + data
    with pytest.raises(ConversionError) as caught:
        parse_sample_sheet(text)
    for word in words:
        assert word in str(caught.value)


def test_v1_sheet_and_v2_settings_are_read():
    v1 = parse_sample_sheet(
        "[Header]\nIEMFileVersion,4\n[Reads]\n151\n151\n[Settings]\nAdapter,CTGTCTCTTATA\n"
        "[Data]\nLane,Sample_ID,Sample_Name,Sample_Project,index,index2\n"
        "1,id1,name1,proj,ACGTACGT,TTTTGGGG\n2,id2,name2,proj,CCCCAAAA,GGGGTTTT\n"
    )
    assert v1.version == 1 and v1.has_lanes and v1.reads == {"Read1Cycles": 151, "Read2Cycles": 151}
    assert [s.number for s in v1.samples] == [1, 2] and v1.samples[1].lane == 2
    assert v1.setting("Adapter") == "CTGTCTCTTATA"
    v2 = parse_sample_sheet(
        "[Header]\nFileFormatVersion,2\n[BCLConvert_Settings]\nOverrideCycles,Y150N1;I8;I8;Y151\n"
        "BarcodeMismatchesIndex1,2\n[BCLConvert_Data]\nSample_ID,index,index2\nx,ACGT,TTTT\n"
    )
    assert v2.version == 2 and v2.override_cycles == "Y150N1;I8;I8;Y151" and not v2.has_lanes
    with pytest.raises(ConversionError, match="BarcodeMismatchesIndex1 is '3'"):
        parse_sample_sheet(
            "[Header]\nFileFormatVersion,2\n[BCLConvert_Settings]\nBarcodeMismatchesIndex1,3\n"
            "[BCLConvert_Data]\nSample_ID,index\nx,ACGT\n"
        )


def test_killed_mid_conversion_leaves_no_fastq(tmp_path):
    """A converter killed (SIGKILL) while it writes leaves only its hidden staging
    folder: no file with a FASTQ or report name appears in the output folder."""
    rng = np.random.default_rng(2)
    barcodes = [(i7, i5) for _, i7, i5, _ in DUAL]
    tiles = make_tiles(rng, 1, list(range(1101, 1131)), 3000, DUAL_READS, barcodes)
    run = write_run(tmp_path / "run", "bcl", DUAL_READS, tiles, 1)
    (run / "SampleSheet.csv").write_text(sheet_text(DUAL))
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "processors.bcl.convert", str(run), str(out), "--threads", "1"],
        cwd=REPOSITORY,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        staged = list(out.glob(".bcl-convert-*/*.fastq.gz")) if out.exists() else []
        if staged or process.poll() is not None:
            break
        time.sleep(0.02)
    assert process.poll() is None, "the conversion finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    visible = [p.name for p in out.iterdir() if not p.name.startswith(".")]
    assert visible == []
