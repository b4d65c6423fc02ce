"""Generated run folders in every format, converted and compared with an answer
written out record by record in plain Python (tests/processors/bcl/runs.py writes
the folders from the format descriptions, independently of the readers)."""

from __future__ import annotations

import gzip
import subprocess
from pathlib import Path

import numpy as np
import pytest

from processors.bcl.convert import ConvertOptions, convert_run
from tests.processors.bcl.runs import make_tiles, write_run

LETTERS = "ACGT"
COMPLEMENT = str.maketrans("ACGTN", "TGCAN")


def revcomp(text: str) -> str:
    return text.translate(COMPLEMENT)[::-1]


def sequence(calls: np.ndarray) -> str:
    return "".join("N" if c == 0 else LETTERS[c & 3] for c in calls)


def quality(calls: np.ndarray) -> str:
    return "".join("#" if c == 0 else chr((c >> 2) + 33) for c in calls)


def distance(observed: str, wanted: str) -> int:
    return sum(1 for a, b in zip(observed, wanted, strict=True) if a != b or a == "N")


def expected_records(
    tiles,
    segments,
    samples,
    mismatches=1,
    include_non_pf=False,
    instrument="M00001",
    number=7,
    flowcell="FC0001",
    reverse_i5=False,
    lanes_in_sheet=False,
):
    """{file name: [records]} in cluster order, one loop per cluster.

    segments: per run read, a list of (kind, cycles) as OverrideCycles gives them.
    samples: (sample id, i7, i5, lane or None) in sheet order."""
    out: dict[str, list[str]] = {}
    for tile in tiles:
        for cluster in range(len(tile.passed)):
            if not tile.passed[cluster] and not include_non_pf:
                continue
            calls = tile.calls[cluster]
            position = 0
            data, index, umi = [], [], []
            for parts in segments:
                read_data, read_index = [], []
                for kind, cycles in parts:
                    piece = calls[position : position + cycles]
                    position += cycles
                    if kind == "Y":
                        read_data.append(piece)
                    elif kind == "I":
                        read_index.append(piece)
                    elif kind == "U":
                        umi.append(sequence(piece))
                if read_data:
                    data.append(np.concatenate(read_data))
                if read_index:
                    index.append(sequence(np.concatenate(read_index)))
            matched = None
            for number_in_sheet, (sample_id, i7, i5, lane) in enumerate(samples, start=1):
                if lane is not None and lane != tile.lane:
                    continue
                wanted_i5 = revcomp(i5) if reverse_i5 and i5 else i5
                if distance(index[0][: len(i7)], i7) <= mismatches and (
                    not i5 or distance(index[1][: len(i5)], wanted_i5) <= mismatches
                ):
                    assert matched is None, "the test's barcodes collide"
                    matched = (sample_id, number_in_sheet)
            stem = f"{matched[0]}_S{matched[1]}" if matched else "Undetermined_S0"
            flag = "N" if tile.passed[cluster] else "Y"
            name = f"@{instrument}:{number}:{flowcell}:{tile.lane}:{tile.tile}:"
            name += f"{round(10 * float(tile.x[cluster]) + 1000)}:"
            name += f"{round(10 * float(tile.y[cluster]) + 1000)}"
            if umi:
                name += ":" + "+".join(umi)
            for read_number, read in enumerate(data, start=1):
                record = (
                    f"{name} {read_number}:{flag}:0:{'+'.join(index)}\n"
                    f"{sequence(read)}\n+\n{quality(read)}\n"
                )
                out.setdefault(f"{stem}_L{tile.lane:03d}_R{read_number}_001.fastq.gz", [])
                out[f"{stem}_L{tile.lane:03d}_R{read_number}_001.fastq.gz"].append(record)
    return out


def sheet_text(samples, settings="", lanes=False) -> str:
    rows = []
    for sample_id, i7, i5, lane in samples:
        rows.append(
            ",".join(([str(lane)] if lanes else []) + [sample_id, i7] + ([i5] if i5 else []))
        )
    columns = (
        (["Lane"] if lanes else []) + ["Sample_ID", "index"] + (["index2"] if samples[0][2] else [])
    )
    return (
        "[Header]\nFileFormatVersion,2\n[Reads]\nRead1Cycles,20\n[BCLConvert_Settings]\n"
        f"{settings}[BCLConvert_Data]\n" + ",".join(columns) + "\n" + "\n".join(rows) + "\n"
    )


def read_fastq_gz(path: Path) -> list[str]:
    text = gzip.decompress(path.read_bytes()).decode()
    lines = text.split("\n")
    return ["\n".join(lines[i : i + 4]) + "\n" for i in range(0, len(lines) - 1, 4)]


def assert_output(out: Path, expected: dict[str, list[str]]) -> None:
    for name, records in expected.items():
        mine = read_fastq_gz(out / name)
        assert mine == records, f"{name}: {len(mine)} records, expected {len(records)}"
        subprocess.run(["gzip", "-t", str(out / name)], check=True)


DUAL = [("S_one", "ACGTACGT", "AAACCCGT", None), ("S_two", "TGCATGCA", "CCAGTTAA", None)]
DUAL_READS = [(20, False), (8, True), (8, True), (16, False)]
DUAL_SEGMENTS = [[("Y", 20)], [("I", 8)], [("I", 8)], [("Y", 16)]]


@pytest.mark.parametrize(
    ("fmt", "positions_kind"),
    [
        ("bcl", "locs"),
        ("bcl.gz", "clocs"),
        ("bgzf", "locs"),
        ("cbcl", "slocs"),
        ("cbcl-pf", "slocs"),
    ],
)
def test_each_format_dual_index_with_no_calls(tmp_path, fmt, positions_kind):
    rng = np.random.default_rng(11)
    barcodes = [(i7, i5) for _, i7, i5, _ in DUAL]
    tiles = make_tiles(rng, 1, [1101, 1102, 2101], 300, DUAL_READS, barcodes, nocall_rate=0.02)
    if positions_kind == "slocs":
        for tile in tiles[1:]:
            tile.x, tile.y = tiles[0].x, tiles[0].y
    run = write_run(tmp_path / "run", fmt, DUAL_READS, tiles, 1, positions_kind)
    (run / "SampleSheet.csv").write_text(sheet_text(DUAL))
    out = tmp_path / "out"
    report = convert_run(run, out, None, ConvertOptions(threads=2))
    expected = expected_records(tiles, DUAL_SEGMENTS, DUAL)
    assert_output(out, expected)
    assert report.formats["1"]["format"] == fmt.split("-")[0].replace("bcl.gz", "bcl")
    assert report.clusters_written == sum(int(t.passed.sum()) for t in tiles)
    assert 0 < report.undetermined < report.clusters_written


def test_non_pf_reads_are_written_when_asked_with_a_y_flag(tmp_path):
    rng = np.random.default_rng(5)
    barcodes = [(i7, i5) for _, i7, i5, _ in DUAL]
    tiles = make_tiles(rng, 1, [1101], 200, DUAL_READS, barcodes, pf_rate=0.6)
    run = write_run(tmp_path / "run", "bcl", DUAL_READS, tiles, 1)
    (run / "SampleSheet.csv").write_text(sheet_text(DUAL))
    report = convert_run(run, tmp_path / "out", None, ConvertOptions(include_non_pf=True))
    assert_output(
        tmp_path / "out", expected_records(tiles, DUAL_SEGMENTS, DUAL, include_non_pf=True)
    )
    assert report.clusters_written == 200 > report.clusters_pf


def test_i5_reverse_complemented_when_run_info_says_so(tmp_path):
    """NovaSeq X / NextSeq 2000 mark the i5 read IsReverseComplement=Y: the sheet holds
    the forward strand and the reads hold its reverse complement."""
    rng = np.random.default_rng(3)
    read_as = [(i7, revcomp(i5)) for _, i7, i5, _ in DUAL]
    tiles = make_tiles(rng, 1, [1101, 1102], 250, DUAL_READS, read_as)
    run = write_run(tmp_path / "run", "cbcl", DUAL_READS, tiles, 1, "slocs", reverse_i5=True)
    for tile in tiles[1:]:
        tile.x, tile.y = tiles[0].x, tiles[0].y
    write_run(tmp_path / "run", "cbcl", DUAL_READS, tiles, 1, "slocs", reverse_i5=True)
    (run / "SampleSheet.csv").write_text(sheet_text(DUAL))
    report = convert_run(run, tmp_path / "out", None, ConvertOptions())
    assert report.i5_orientation == "reverse-complement"
    assert "IsReverseComplement" in report.i5_reason
    assert_output(tmp_path / "out", expected_records(tiles, DUAL_SEGMENTS, DUAL, reverse_i5=True))


def test_i5_orientation_found_from_the_reads_when_run_info_is_silent(tmp_path):
    rng = np.random.default_rng(4)
    read_as = [(i7, revcomp(i5)) for _, i7, i5, _ in DUAL]
    tiles = make_tiles(rng, 1, [1101], 400, DUAL_READS, read_as)
    run = write_run(tmp_path / "run", "bcl", DUAL_READS, tiles, 1, instrument="NB500001")
    (run / "SampleSheet.csv").write_text(sheet_text(DUAL))
    report = convert_run(run, tmp_path / "out", None, ConvertOptions())
    assert report.i5_orientation == "reverse-complement"
    assert "match the sheet's i5 reverse-complemented" in report.i5_reason
    assert_output(
        tmp_path / "out",
        expected_records(tiles, DUAL_SEGMENTS, DUAL, reverse_i5=True, instrument="NB500001"),
    )


def test_umis_from_override_cycles_go_into_read_names(tmp_path):
    rng = np.random.default_rng(8)
    reads = [(20, False), (8, True), (16, False)]
    samples = [("A1", "ACGTACGT", "", None), ("B2", "TTTTGGGG", "", None)]
    tiles = make_tiles(rng, 1, [1101], 200, reads, [("ACGTACGT",), ("TTTTGGGG",)])
    run = write_run(tmp_path / "run", "bcl", reads, tiles, 1)
    (run / "SampleSheet.csv").write_text(sheet_text(samples, "OverrideCycles,U5Y15;I8;Y16\n"))
    convert_run(run, tmp_path / "out", None, ConvertOptions())
    segments = [[("U", 5), ("Y", 15)], [("I", 8)], [("Y", 16)]]
    expected = expected_records(tiles, segments, samples)
    assert_output(tmp_path / "out", expected)
    first = next(iter(expected.values()))[0].split(" ")[0]
    assert len(first.split(":")) == 8  # ...:x:y:UMI


def test_lanes_with_their_own_samples(tmp_path):
    rng = np.random.default_rng(9)
    reads = [(20, False), (8, True)]
    samples = [
        ("L1a", "ACGTACGT", "", 1),
        ("L1b", "TGCATGCA", "", 1),
        ("L2a", "ACGTACGT", "", 2),
    ]
    barcodes = [("ACGTACGT",), ("TGCATGCA",)]
    tiles = make_tiles(rng, 2, [1101, 1102], 200, reads, barcodes)
    run = write_run(tmp_path / "run", "bcl", reads, tiles, 2)
    (run / "SampleSheet.csv").write_text(sheet_text(samples, lanes=True))
    report = convert_run(run, tmp_path / "out", None, ConvertOptions(threads=2))
    expected = expected_records(tiles, [[("Y", 20)], [("I", 8)]], samples)
    assert_output(tmp_path / "out", expected)
    assert "L2a_S3_L002_R1_001.fastq.gz" in expected
    lane2 = {row["sample_id"]: row["reads"] for row in report.samples if row["lane"] == 2}
    assert set(lane2) == {"L2a", "Undetermined"}
    stats = (tmp_path / "out" / "Reports" / "Demultiplex_Stats.csv").read_text().splitlines()
    assert any(line.startswith("2,L2a,,ACGTACGT,") for line in stats)


ADAPTER = "AGATCGGAAGAGC"


def trimmed(record: str, behavior: str, min_length: int = 8, mask_short: int = 4) -> str:
    """One R1 record after adapter handling, computed a read at a time."""
    name, bases, plus, quals, _ = record.split("\n")
    length = len(bases)
    start = length
    for position in range(length):
        overlap = min(len(ADAPTER), length - position)
        mismatches = sum(
            1 for a, b in zip(bases[position : position + overlap], ADAPTER, strict=False) if a != b
        )
        if mismatches <= int(0.1 * overlap + 1e-9):
            start = position
            break
    if start == length:
        return record
    keep = length if behavior == "mask" else max(start, min(min_length, length))
    masked_from = 0 if start < mask_short else start
    bases = bases[:masked_from] + "N" * (keep - masked_from)
    quals = quals[:masked_from] + "#" * (keep - masked_from)
    return f"{name}\n{bases}\n{plus}\n{quals}\n"


@pytest.mark.parametrize("behavior", ["trim", "mask"])
def test_adapters_trimmed_or_masked_as_the_sheet_says(tmp_path, behavior):
    rng = np.random.default_rng(12)
    reads = [(20, False), (8, True)]
    samples = [("A1", "ACGTACGT", "", None)]
    tiles = make_tiles(rng, 1, [1101], 300, reads, [("ACGTACGT",)], nocall_rate=0.0)
    tile = tiles[0]
    code = {"A": 0, "C": 1, "G": 2, "T": 3}
    with_adapter = rng.random(300) < 0.4
    starts = rng.integers(2, 18, 300)
    for cluster in np.flatnonzero(with_adapter):
        start = int(starts[cluster])
        piece = ADAPTER[: 20 - start]
        tile.calls[cluster, start : start + len(piece)] = [
            (code[c] | (tile.calls[cluster, i + start] & 0xFC)) for i, c in enumerate(piece)
        ]
    run = write_run(tmp_path / "run", "bcl", reads, tiles, 1)
    settings = (
        f"AdapterRead1,{ADAPTER}\nAdapterBehavior,{behavior}\n"
        "MinimumTrimmedReadLength,8\nMaskShortReads,4\n"
    )
    (run / "SampleSheet.csv").write_text(sheet_text(samples, settings))
    report = convert_run(run, tmp_path / "out", None, ConvertOptions())
    expected = expected_records(tiles, [[("Y", 20)], [("I", 8)]], samples)
    expected = {name: [trimmed(r, behavior) for r in records] for name, records in expected.items()}
    assert_output(tmp_path / "out", expected)
    changed = sum(r.count("N") for rs in expected.values() for r in rs)
    assert changed > 100
    assert report.settings["adapters"] == {"R1": [ADAPTER]}


def test_reports_have_bcl_convert_columns_and_the_counted_figures(tmp_path):
    rng = np.random.default_rng(31)
    barcodes = [(i7, i5) for _, i7, i5, _ in DUAL]
    tiles = make_tiles(rng, 1, [1101, 1102], 400, DUAL_READS, barcodes, unknown_rate=0.2)
    run = write_run(tmp_path / "run", "bcl", DUAL_READS, tiles, 1)
    (run / "SampleSheet.csv").write_text(sheet_text(DUAL))
    out = tmp_path / "out"
    report = convert_run(run, out, None, ConvertOptions())
    expected = expected_records(tiles, DUAL_SEGMENTS, DUAL)
    import csv

    with (out / "Reports" / "Demultiplex_Stats.csv").open() as handle:
        stats = list(csv.DictReader(handle))
    assert list(stats[0]) == [
        "Lane", "SampleID", "Sample_Project", "Index", "# Reads", "# Perfect Index Reads",
        "# One Mismatch Index Reads", "# Two Mismatch Index Reads", "% Reads",
        "% Perfect Index Reads", "% One Mismatch Index Reads", "% Two Mismatch Index Reads",
    ]  # fmt: skip
    for row in stats:
        stem = "Undetermined_S0" if row["SampleID"] == "Undetermined" else None
        if stem is None:
            number = [s[0] for s in DUAL].index(row["SampleID"]) + 1
            stem = f"{row['SampleID']}_S{number}"
        assert int(row["# Reads"]) == len(expected[f"{stem}_L001_R1_001.fastq.gz"])
    s_one = next(row for row in stats if row["SampleID"] == "S_one")
    assert s_one["Index"] == "ACGTACGT-AAACCCGT"
    assert int(s_one["# Perfect Index Reads"]) + int(s_one["# One Mismatch Index Reads"]) + int(
        s_one["# Two Mismatch Index Reads"]
    ) == int(s_one["# Reads"])
    assert 0 < int(s_one["# One Mismatch Index Reads"]) < int(s_one["# Reads"])

    with (out / "Reports" / "Quality_Metrics.csv").open() as handle:
        quality = list(csv.DictReader(handle))
    assert list(quality[0]) == [
        "Lane", "SampleID", "index", "index2", "ReadNumber", "Yield", "YieldQ30",
        "QualityScoreSum", "Mean Quality Score (PF)", "% Q30",
    ]  # fmt: skip
    records = expected["S_one_S1_L001_R2_001.fastq.gz"]
    quals = "".join(r.split("\n")[3] for r in records)
    row = next(r for r in quality if r["SampleID"] == "S_one" and r["ReadNumber"] == "2")
    assert int(row["Yield"]) == len(quals)
    assert int(row["YieldQ30"]) == sum(1 for q in quals if ord(q) - 33 >= 30)
    assert int(row["QualityScoreSum"]) == sum(ord(q) - 33 for q in quals)

    with (out / "Reports" / "Top_Unknown_Barcodes.csv").open() as handle:
        unknown = list(csv.DictReader(handle))
    assert list(unknown[0]) == [
        "Lane", "index", "index2", "# Reads", "% of Unknown Barcodes", "% of All Reads",
    ]  # fmt: skip
    undetermined = expected["Undetermined_S0_L001_R1_001.fastq.gz"]
    seen = {}
    for record in undetermined:
        i7, i5 = record.split("\n")[0].rsplit(":", 1)[1].split("+")
        seen[(i7, i5)] = seen.get((i7, i5), 0) + 1
    top = unknown[0]
    assert int(top["# Reads"]) == max(seen.values()) == seen[(top["index"], top["index2"])]
    assert report.undetermined == len(undetermined)


def test_v1_sheet_projects_index_fastqs_and_no_lane_splitting(tmp_path):
    """bcl2fastq's sheet: files take Sample_Name and sit in the Sample_Project folder;
    CreateFastqForIndexReads adds I1/I2; NoLaneSplitting joins the lanes in one file."""
    rng = np.random.default_rng(17)
    barcodes = [(i7, i5) for _, i7, i5, _ in DUAL]
    tiles = make_tiles(rng, 2, [1101], 150, DUAL_READS, barcodes)
    run = write_run(tmp_path / "run", "bcl.gz", DUAL_READS, tiles, 2)
    (run / "SampleSheet.csv").write_text(
        "[Header]\nIEMFileVersion,4\n[Reads]\n20\n16\n[Settings]\n"
        "CreateFastqForIndexReads,1\nNoLaneSplitting,true\n[Data]\n"
        "Sample_ID,Sample_Name,Sample_Project,index,index2\n"
        f"id1,first,projA,{DUAL[0][1]},{DUAL[0][2]}\nid2,second,projB,{DUAL[1][1]},{DUAL[1][2]}\n"
    )
    out = tmp_path / "out"
    report = convert_run(run, out, None, ConvertOptions())
    expected = expected_records(tiles, DUAL_SEGMENTS, DUAL)
    for stem, target in (
        ("S_one_S1", "projA/first_S1"),
        ("S_two_S2", "projB/second_S2"),
        ("Undetermined_S0", "Undetermined_S0"),
    ):
        for read in ("R1", "R2"):
            joined = expected[f"{stem}_L001_{read}_001.fastq.gz"]
            joined = joined + expected[f"{stem}_L002_{read}_001.fastq.gz"]
            assert read_fastq_gz(out / f"{target}_{read}_001.fastq.gz") == joined
        index_reads = read_fastq_gz(out / f"{target}_I1_001.fastq.gz")
        r1 = read_fastq_gz(out / f"{target}_R1_001.fastq.gz")
        assert [r.split("\n")[0] for r in index_reads] == [r.split("\n")[0] for r in r1]
        for record in index_reads:
            name, bases = record.split("\n")[:2]
            assert name.rsplit(":", 1)[1].split("+")[0] == bases
        assert (out / f"{target}_I2_001.fastq.gz").exists()
    assert report.settings["no_lane_splitting"] is True
    assert sorted(p.name for p in out.iterdir()) == ["Reports", "Undetermined_S0_I1_001.fastq.gz",
        "Undetermined_S0_I2_001.fastq.gz", "Undetermined_S0_R1_001.fastq.gz",
        "Undetermined_S0_R2_001.fastq.gz", "projA", "projB"]  # fmt: skip


def test_include_non_pf_comes_from_the_setting(settings):
    settings.REFINERY_BCL_INCLUDE_NON_PF = True
    assert ConvertOptions.from_settings().include_non_pf is True
    settings.REFINERY_BCL_INCLUDE_NON_PF = False
    assert ConvertOptions.from_settings(threads=3).include_non_pf is False


def test_two_mismatches_and_no_calls_counted_as_mismatches(tmp_path):
    """BarcodeMismatchesIndex1/2 = 2: reads two off (a no-call is one of them) still
    match; the Demultiplex_Stats count them as two-mismatch reads."""
    rng = np.random.default_rng(23)
    samples = [("far1", "AAAAAAAA", "", None), ("far2", "CCCCCCCC", "", None)]
    reads = [(20, False), (8, True)]
    tiles = make_tiles(rng, 1, [1101], 400, reads, [("AAAAAAAA",), ("CCCCCCCC",)])
    tile = tiles[0]
    tile.calls[:40, 20] = 0  # a no-call in the index
    tile.calls[:40, 21] = (tile.calls[:40, 21] & 0xFC) | 3  # and a T
    run = write_run(tmp_path / "run", "bcl", reads, tiles, 1)
    (run / "SampleSheet.csv").write_text(sheet_text(samples, "BarcodeMismatchesIndex1,2\n"))
    report = convert_run(run, tmp_path / "out", None, ConvertOptions())
    assert_output(
        tmp_path / "out", expected_records(tiles, [[("Y", 20)], [("I", 8)]], samples, mismatches=2)
    )
    two = sum(row["two_mismatch"] for row in report.samples if row["sample_number"])
    assert two >= 30


def test_override_cycles_skip_cycles_and_shorter_index(tmp_path):
    """`N` cycles are left out of the reads; `I6N2` uses six of eight index cycles."""
    rng = np.random.default_rng(29)
    reads = [(20, False), (8, True), (16, False)]
    samples = [("A1", "ACGTAC", "", None), ("B2", "TTTTGG", "", None)]
    tiles = make_tiles(rng, 1, [1101], 200, reads, [("ACGTACGT",), ("TTTTGGGG",)])
    run = write_run(tmp_path / "run", "bcl", reads, tiles, 1)
    (run / "SampleSheet.csv").write_text(sheet_text(samples, "OverrideCycles,Y19N1;I6N2;N1Y15\n"))
    convert_run(run, tmp_path / "out", None, ConvertOptions())
    segments = [[("Y", 19), ("N", 1)], [("I", 6), ("N", 2)], [("N", 1), ("Y", 15)]]
    expected = expected_records(tiles, segments, samples)
    assert_output(tmp_path / "out", expected)
    first = expected["A1_S1_L001_R1_001.fastq.gz"][0].split("\n")
    assert len(first[1]) == 19 and len(first[0].rsplit(":", 1)[1]) == 6
