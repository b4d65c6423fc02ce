"""An engine's reports are input like a source's answer: a missing, oversized or
malformed one fails the job naming the file, never a traceback."""

from __future__ import annotations

import json

import pytest

from processors import demultiplex_reports
from processors.demultiplex_reports import read_reports
from runner.pipeline import JobError

STATS = (
    "Lane,SampleID,Sample_Project,Index,# Reads,# Perfect Index Reads,"
    "# One Mismatch Index Reads,# Two Mismatch Index Reads,% Reads\n"
)


def write(folder, name, text):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_bcl_convert_reports_give_the_figures(tmp_path):
    write(tmp_path, "Reports/Demultiplex_Stats.csv", STATS + "1,S1,demo,ACGT,10,9,1,0,0.5\n")
    write(
        tmp_path,
        "Reports/Quality_Metrics.csv",
        "Lane,SampleID,index,index2,ReadNumber,Yield,YieldQ30,QualityScoreSum\n"
        "1,S1,ACGT,,1,250,200,9000\n1,S1,ACGT,,2,250,100,8000\n",
    )
    [row] = read_reports(tmp_path)
    assert (row["reads"], row["perfect_index_reads"], row["percent_of_lane"]) == (10, 9, 50.0)
    assert (row["yield_bases"], row["yield_q30"], row["mean_quality"]) == (500, 300, 34.0)


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [
        ("Reports/Demultiplex_Stats.csv", STATS + "1,S1,demo,ACGT,many,9,1,0,0.5\n", "# Reads"),
        ("Reports/Demultiplex_Stats.csv", "Lane,SampleID\n1,S1\n", "no column '# Reads'"),
        ("Stats/Stats.json", "{not json", "not bcl2fastq's shape"),
        ("Stats/Stats.json", json.dumps({"ConversionResults": [{"Lane": 1}]}), "LaneNumber"),
        ("Nothing.txt", "", "neither Reports/Demultiplex_Stats.csv nor Stats/Stats.json"),
    ],
)
def test_a_malformed_report_fails_for_good_naming_what_is_wrong(tmp_path, name, text, words):
    write(tmp_path, name, text)
    with pytest.raises(JobError, match=words.replace("(", r"\(")) as raised:
        read_reports(tmp_path)
    assert raised.value.no_retry


def test_an_oversized_report_is_not_read(tmp_path, monkeypatch):
    monkeypatch.setattr(demultiplex_reports, "REPORT_MAX_BYTES", 10)
    write(tmp_path, "Reports/Demultiplex_Stats.csv", STATS)
    with pytest.raises(JobError, match=r"Demultiplex_Stats\.csv is \d+ bytes"):
        read_reports(tmp_path)
