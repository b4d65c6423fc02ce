"""BCL Convert's `Reports/` CSVs, in its column shapes (MultiQC's BCL Convert module
reads them with RunInfo.xml from the same folder).

The figures come from the converter's `ConversionReport`; nothing here counts reads.
"""

from __future__ import annotations

import csv
import io

DEMULTIPLEX_COLUMNS = [
    "Lane",
    "SampleID",
    "Sample_Project",
    "Index",
    "# Reads",
    "# Perfect Index Reads",
    "# One Mismatch Index Reads",
    "# Two Mismatch Index Reads",
    "% Reads",
    "% Perfect Index Reads",
    "% One Mismatch Index Reads",
    "% Two Mismatch Index Reads",
]
QUALITY_COLUMNS = [
    "Lane",
    "SampleID",
    "index",
    "index2",
    "ReadNumber",
    "Yield",
    "YieldQ30",
    "QualityScoreSum",
    "Mean Quality Score (PF)",
    "% Q30",
]
UNKNOWN_COLUMNS = ["Lane", "index", "index2", "# Reads", "% of Unknown Barcodes", "% of All Reads"]


def _fraction(part: int, whole: int, digits: int = 4) -> str:
    return f"{(part / whole if whole else 0):.{digits}f}"


def demultiplex_stats_csv(rows: list[dict], lane_totals: dict[int, int]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(DEMULTIPLEX_COLUMNS)
    for row in rows:
        reads = row["reads"]
        writer.writerow(
            [
                row["lane"],
                row["sample_id"],
                row["project"],
                row["index"],
                reads,
                row["perfect"],
                row["one_mismatch"],
                row["two_mismatch"],
                _fraction(reads, lane_totals.get(row["lane"], 0)),
                _fraction(row["perfect"], reads),
                _fraction(row["one_mismatch"], reads),
                _fraction(row["two_mismatch"], reads),
            ]
        )
    return out.getvalue()


def quality_metrics_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(QUALITY_COLUMNS)
    for row in rows:
        for read in row["read_metrics"]:
            bases = read["yield"]
            writer.writerow(
                [
                    row["lane"],
                    row["sample_id"],
                    row["index_i7"],
                    row["index_i5"],
                    read["read"],
                    bases,
                    read["yield_q30"],
                    read["quality_sum"],
                    f"{(read['quality_sum'] / bases if bases else 0):.2f}",
                    _fraction(read["yield_q30"], bases, 2),
                ]
            )
    return out.getvalue()


def top_unknown_csv(unknown: list[dict], lane_totals: dict[int, int], lane_unknown: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(UNKNOWN_COLUMNS)
    for row in unknown:
        writer.writerow(
            [
                row["lane"],
                row["index"],
                row["index2"],
                row["reads"],
                _fraction(row["reads"], lane_unknown.get(row["lane"], 0), 8),
                _fraction(row["reads"], lane_totals.get(row["lane"], 0), 8),
            ]
        )
    return out.getvalue()
