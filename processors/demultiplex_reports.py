"""The figures a demultiplexing engine reports, read the same way for each:
BCL Convert's `Reports/Demultiplex_Stats.csv` and `Reports/Quality_Metrics.csv`
(the built-in converter writes the same files) or bcl2fastq's
`Stats/Stats.json`. One dict per lane and sample (or `Undetermined`):
lane, sample_id, sample_project, index, reads, perfect_index_reads,
one_mismatch_index_reads, percent_of_lane, yield_bases, yield_q30, mean_quality.

An engine's output is checked like any source's: a report that is missing,
too large or malformed fails the job naming the file.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from pathlib import Path

from runner.pipeline import JobError

REPORT_MAX_BYTES = 64 * 1024 * 1024


def _read(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > REPORT_MAX_BYTES:
            raise JobError(f"{path.name} is {size} bytes: not an engine's report", no_retry=True)
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise JobError(f"the engine wrote no readable {path.name}: {error.strerror}") from None


def _number(value: str, field: str, where: str) -> float:
    try:
        return float(value.replace(",", "")) if value.strip() else 0.0
    except ValueError:
        raise JobError(f"{where}: {field} is {value[:30]!r}, not a number", no_retry=True) from None


def read_reports(output: Path) -> list[dict]:
    """The figures from whichever reports the engine wrote under `output`."""
    if (output / "Reports" / "Demultiplex_Stats.csv").exists():
        return _from_bcl_convert(output / "Reports")
    if (output / "Stats" / "Stats.json").exists():
        return _from_stats_json(output / "Stats" / "Stats.json")
    raise JobError(
        "the engine wrote neither Reports/Demultiplex_Stats.csv nor Stats/Stats.json", no_retry=True
    )


def _rows(path: Path, needed: tuple[str, ...]) -> list[dict]:
    rows = list(csv.DictReader(io.StringIO(_read(path))))
    missing = [name for name in needed if rows and name not in rows[0]]
    if missing:
        raise JobError(f"{path.name} has no column {missing[0]!r}", no_retry=True)
    return rows


def _from_bcl_convert(reports: Path) -> list[dict]:
    where = "Reports/Demultiplex_Stats.csv"
    stats = _rows(
        reports / "Demultiplex_Stats.csv",
        ("Lane", "SampleID", "# Reads", "# Perfect Index Reads", "# One Mismatch Index Reads"),
    )
    quality: dict[tuple[int, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    if (reports / "Quality_Metrics.csv").exists():
        qwhere = "Reports/Quality_Metrics.csv"
        for row in _rows(
            reports / "Quality_Metrics.csv", ("Lane", "SampleID", "Yield", "YieldQ30")
        ):
            key = (int(_number(row["Lane"], "Lane", qwhere)), row["SampleID"])
            quality[key][0] += _number(row["Yield"], "Yield", qwhere)
            quality[key][1] += _number(row["YieldQ30"], "YieldQ30", qwhere)
            quality[key][2] += _number(row.get("QualityScoreSum", ""), "QualityScoreSum", qwhere)
    found = []
    for row in stats:
        lane = int(_number(row["Lane"], "Lane", where))
        yields, q30, quality_sum = quality[(lane, row["SampleID"])]
        found.append(
            {
                "lane": lane,
                "sample_id": row["SampleID"][:128],
                "sample_project": (row.get("Sample_Project") or "")[:128],
                "index": (row.get("Index") or "")[:128],
                "reads": int(_number(row["# Reads"], "# Reads", where)),
                "perfect_index_reads": int(
                    _number(row["# Perfect Index Reads"], "# Perfect Index Reads", where)
                ),
                "one_mismatch_index_reads": int(
                    _number(row["# One Mismatch Index Reads"], "# One Mismatch", where)
                ),
                "percent_of_lane": _number(row.get("% Reads", ""), "% Reads", where) * 100
                if row.get("% Reads")
                else None,
                "yield_bases": int(yields),
                "yield_q30": int(q30),
                "mean_quality": round(quality_sum / yields, 2) if yields else None,
            }
        )
    return found


def _from_stats_json(path: Path) -> list[dict]:
    try:
        document = json.loads(_read(path))
        found = []
        for lane in document["ConversionResults"]:
            number = int(lane["LaneNumber"])
            results = [*lane.get("DemuxResults", [])]
            if lane.get("Undetermined"):
                results.append({"SampleId": "Undetermined", **lane["Undetermined"]})
            total = sum(int(r.get("NumberReads", 0)) for r in results) or 1
            for result in results:
                counts = defaultdict(int)
                for metric in result.get("IndexMetrics", []):
                    for mismatches, n in (metric.get("MismatchCounts") or {}).items():
                        counts[str(mismatches)] += int(n)
                metrics = result.get("ReadMetrics", [])
                yields = sum(int(m.get("Yield", 0)) for m in metrics)
                q30 = sum(int(m.get("YieldQ30", 0)) for m in metrics)
                quality_sum = sum(int(m.get("QualityScoreSum", 0)) for m in metrics)
                reads = int(result.get("NumberReads", 0))
                found.append(
                    {
                        "lane": number,
                        "sample_id": str(result["SampleId"])[:128],
                        "sample_project": "",
                        "index": "-".join(
                            m.get("IndexSequence", "") for m in result.get("IndexMetrics", [])
                        )[:128],
                        "reads": reads,
                        "perfect_index_reads": counts["0"],
                        "one_mismatch_index_reads": counts["1"],
                        "percent_of_lane": round(100 * reads / total, 4),
                        "yield_bases": yields,
                        "yield_q30": q30,
                        "mean_quality": round(quality_sum / yields, 2) if yields else None,
                    }
                )
        return found
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise JobError(
            f"Stats/Stats.json is not bcl2fastq's shape ({type(error).__name__}: {error})",
            no_retry=True,
        ) from None
