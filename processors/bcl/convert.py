"""`convert_run`: a run folder's base calls → demultiplexed, gzipped FASTQ and BCL
Convert's reports.

The work goes tile by tile: a worker reads one tile (every cycle the output needs),
matches its indexes, lays out its FASTQ records and compresses each output file's
share into a gzip member; the parent appends the members to the files in tile order.
Memory follows the clusters of one tile per worker, never the number of tiles.

Everything is written into a hidden folder inside the output folder and moved into
place only when every tile has been converted, so a crash or a refusal leaves no
file that looks finished.

The parts: processors.bcl.planning decides what to read and how to match (before
any tile), processors.bcl.tile converts one tile (in a worker), processors.bcl.output
writes files; this module runs the tiles and gathers the figures.

Command line (also what bench/demultiplex.py runs):

    python -m processors.bcl.convert RUN_FOLDER OUTPUT_FOLDER [--sample-sheet CSV]
        [--threads N] [--barcode-mismatches 1] [--include-non-pf] ...
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from collections import Counter, deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from common.progress import Progress
from processors.bcl.errors import ConversionError
from processors.bcl.fastq import gzip_member
from processors.bcl.layout import RunLayout
from processors.bcl.native import library as native_library
from processors.bcl.native import release_scratch
from processors.bcl.output import OutputFiles, file_name, publish, write_reports
from processors.bcl.planning import ConvertOptions, Plan, decide_i5, lane_barcodes, make_plan
from processors.bcl.sample_sheet import read_sample_sheet
from processors.bcl.tile import TOP_UNKNOWN, convert_tile, init_worker

__all__ = ["ENGINE", "ENGINE_VERSION", "ConversionReport", "ConvertOptions", "convert_run", "main"]

ENGINE = "refinery-builtin"
ENGINE_VERSION = "1.0"


@dataclass
class ConversionReport:
    engine: str
    engine_version: str
    run_id: str
    flowcell: str
    instrument: str
    formats: dict
    read_structure: list[dict]
    settings: dict
    i5_orientation: str
    i5_reason: str
    clusters: int = 0
    clusters_pf: int = 0
    clusters_written: int = 0
    undetermined: int = 0
    lane_totals: dict[int, int] = field(default_factory=dict)
    samples: list[dict] = field(default_factory=list)
    top_unknown: list[dict] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------ the run


def convert_run(
    run_folder: Path,
    output_dir: Path,
    sample_sheet: Path | None = None,
    options: ConvertOptions | None = None,
) -> ConversionReport:
    """Convert a run folder into demultiplexed FASTQ under output_dir.

    Raises ConversionError (naming the file or sample-sheet line) for input that
    cannot be converted; then nothing new is left in output_dir.
    """
    started = time.monotonic()
    options = options or ConvertOptions()
    run_folder = Path(run_folder)
    output_dir = Path(output_dir)
    if sample_sheet is None and (run_folder / "SampleSheet.csv").exists():
        sample_sheet = run_folder / "SampleSheet.csv"
    sheet = read_sample_sheet(Path(sample_sheet)) if sample_sheet else None
    plan, extra = make_plan(run_folder, sheet, options)
    run_info = plan.run_info
    plan.layout = RunLayout(run_folder, run_info.lane_count, run_info.tiles)
    reverse_i5, reason = decide_i5(plan, sheet, extra["index_reads"], options)
    lane_samples = {}
    for lane in plan.layout.lanes:
        barcodes, samples = lane_barcodes(
            plan, sheet, lane, extra["index_reads"], extra["mismatches"], reverse_i5
        )
        plan.lanes[lane] = barcodes
        lane_samples[lane] = samples
    no_lane_split = (
        options.no_lane_splitting
        if options.no_lane_splitting is not None
        else bool(sheet and sheet.flag("NoLaneSplitting"))
    )
    report = ConversionReport(
        engine=ENGINE,
        engine_version=ENGINE_VERSION,
        run_id=run_info.run_id,
        flowcell=run_info.flowcell,
        instrument=run_info.instrument,
        formats=plan.layout.describe(),
        read_structure=run_info.read_structure(),
        settings={**extra["settings"], "no_lane_splitting": no_lane_split},
        i5_orientation="reverse-complement" if reverse_i5 else "as-written",
        i5_reason=reason,
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".bcl-convert-", dir=output_dir))
    try:
        _convert_tiles(plan, sheet, lane_samples, staging, report, options, no_lane_split)
        report.seconds = round(time.monotonic() - started, 3)
        write_reports(staging, report)
        publish(staging, output_dir, report)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return report


def _convert_tiles(plan, sheet, lane_samples, staging, report, options, no_lane_split) -> None:
    jobs = [(lane, tile) for lane, layout in plan.layout.lanes.items() for tile in layout.tiles]
    if options.tiles is not None:
        wanted = set(options.tiles)
        jobs = [(lane, tile) for lane, tile in jobs if f"{lane}_{tile}" in wanted]
        if not jobs:
            raise ConversionError(f"none of the tiles {sorted(wanted)[:5]} is in the run")
    threads = options.threads or os.cpu_count() or 1
    version = sheet.version if sheet else 2
    totals: dict[tuple[int, int], dict] = {}
    read_totals: dict[tuple[int, int, str], list[float]] = {}
    unknown: dict[int, Counter] = {}
    expected: set[str] = set()
    for lane, samples in lane_samples.items():
        for output in plan.outputs:
            expected.add(file_name(None, lane, output.key, version, no_lane_split))
            for sample in samples:
                expected.add(file_name(sample, lane, output.key, version, no_lane_split))

    files = OutputFiles()
    paths: dict[tuple[int, str, int], Path] = {}

    def take(result: dict) -> None:
        lane = result["lane"]
        samples = lane_samples[lane]
        spool = result["spool"]
        source = os.open(spool, os.O_RDONLY) if spool else None
        try:
            for key, members in result["members"].items():
                for sample_index, *member in members:
                    path = paths.get((lane, key, sample_index))
                    if path is None:
                        sample = samples[sample_index] if sample_index >= 0 and samples else None
                        path = staging / file_name(sample, lane, key, version, no_lane_split)
                        paths[(lane, key, sample_index)] = path
                    if source is None:
                        files.append(path, member[0])
                    else:
                        files.copy(path, source, *member)
        finally:
            if source is not None:
                os.close(source)
                os.unlink(spool)
        report.clusters += result["clusters"]
        report.clusters_pf += result["pf"]
        report.clusters_written += result["written"]
        report.lane_totals[lane] = report.lane_totals.get(lane, 0) + result["written"]
        for g in range(len(result["counts"])):
            entry = totals.setdefault(
                (lane, g), {"reads": 0, "perfect": 0, "one_mismatch": 0, "two_mismatch": 0}
            )
            entry["reads"] += int(result["counts"][g])
            entry["perfect"] += int(result["perfect"][g])
            entry["one_mismatch"] += int(result["one"][g])
            entry["two_mismatch"] += int(result["two"][g])
            for key, (yields, q30, qsum) in result["read_metrics"].items():
                figures = read_totals.setdefault((lane, g, key), [0, 0, 0])
                figures[0] += int(yields[g])
                figures[1] += int(q30[g])
                figures[2] += int(qsum[g])
        bucket = unknown.setdefault(lane, Counter())
        bucket.update(result["unknown"])
        if len(bucket) > TOP_UNKNOWN * 100:
            unknown[lane] = Counter(dict(bucket.most_common(TOP_UNKNOWN * 10)))

    try:
        _run_jobs(plan, jobs, threads, take, options, staging)
    finally:
        files.close()
    empty = gzip_member(b"", plan.level)
    for name in expected:
        path = staging / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(empty)
    _fill_report(plan, lane_samples, totals, read_totals, unknown, report)


def _run_jobs(
    plan: Plan, jobs: list, threads: int, take, options: ConvertOptions, staging: Path
) -> None:
    """Convert the tiles, in worker processes when there are several threads; hand
    each result to take() in tile order (at most two tiles per worker in flight).
    Workers leave their tiles' gzip members in spool files in the staging folder."""
    done = 0
    if threads <= 1 or len(jobs) <= 1:
        init_worker(plan)
        try:
            for lane, tile in jobs:
                take(convert_tile(lane, tile))
                done += 1
                if options.progress:
                    options.progress(done, len(jobs))
        finally:
            release_scratch()  # this is the caller's process: give the buffers back
    else:
        native_library()  # compiled (or found) once, here: the forked workers inherit it
        plan.spool = staging / ".tiles"
        plan.spool.mkdir()
        # Forked workers share the parent's memory until they write to it; a full
        # garbage collection in a worker would touch (and so copy) every object the
        # parent has. Frozen objects are left alone by the collector.
        gc.freeze()
        try:
            _run_pool(plan, jobs, threads, take, options)
        finally:
            gc.unfreeze()
        plan.spool.rmdir()  # every tile's spool was copied out and removed
        plan.spool = None


def _run_pool(plan: Plan, jobs: list, threads: int, take, options: ConvertOptions) -> None:
    """The tiles in forked worker processes, results handed to take() in tile order."""
    done = 0
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(
        max_workers=threads, mp_context=context, initializer=init_worker, initargs=(plan, True)
    ) as pool:
        pending: deque = deque()
        queue = iter(jobs)
        for job in queue:
            pending.append(pool.submit(convert_tile, *job))
            if len(pending) >= threads * 2:
                break
        while pending:
            result = pending.popleft().result()
            for job in queue:
                pending.append(pool.submit(convert_tile, *job))
                break
            take(result)
            done += 1
            if options.progress:
                options.progress(done, len(jobs))


def _fill_report(plan, lane_samples, totals, read_totals, unknown, report) -> None:
    index_reads = len(plan.index_columns)
    for lane, samples in lane_samples.items():
        rows = [(None, 0)] + [(s, i + 1) for i, s in enumerate(samples)]
        for sample, g in rows[1:] + rows[:1]:
            figures = totals.get(
                (lane, g), {"reads": 0, "perfect": 0, "one_mismatch": 0, "two_mismatch": 0}
            )
            codes = plan.lanes[lane].barcodes[g - 1] if sample and plan.lanes[lane].lengths else ()
            i7 = sample.index if sample else ""
            i5 = sample.index2 if sample else ""
            read_metrics = []
            for output in plan.outputs:
                yields, q30, qsum = read_totals.get((lane, g, output.key), [0, 0, 0])
                read_metrics.append(
                    {
                        "read": output.key[1:] if output.key[0] == "R" else output.key,
                        "yield": yields,
                        "yield_q30": q30,
                        "quality_sum": qsum,
                    }
                )
            report.samples.append(
                {
                    "lane": lane,
                    "sample_id": sample.sample_id if sample else "Undetermined",
                    "sample_number": sample.number if sample else 0,
                    "project": sample.project if sample else "",
                    "index": "-".join(x for x in (i7, i5) if x),
                    "index_i7": i7,
                    "index_i5": i5,
                    "matched_as": list(codes),
                    **figures,
                    "read_metrics": read_metrics,
                }
            )
            if sample is None:
                report.undetermined += figures["reads"]
        lengths = plan.lanes[lane].lengths
        for key, count in unknown.get(lane, Counter()).most_common(TOP_UNKNOWN):
            text = key.decode()
            i7 = text[: lengths[0]] if lengths else text
            i5 = text[lengths[0] :] if len(lengths) > 1 else ""
            report.top_unknown.append({"lane": lane, "index": i7, "index2": i5, "reads": count})
    report.settings["index_reads"] = index_reads


# ------------------------------------------------------------------ command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m processors.bcl.convert",
        description="Convert an Illumina run folder's base calls into demultiplexed "
        "FASTQ (the built-in engine of the bcl2fastq pipeline).",
    )
    parser.add_argument("run_folder", type=Path)
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("--sample-sheet", type=Path, help="default: RUN_FOLDER/SampleSheet.csv")
    parser.add_argument("--threads", type=int, default=0, help="worker processes (0: all cores)")
    parser.add_argument(
        "--barcode-mismatches",
        type=int,
        choices=(0, 1, 2),
        help="mismatches allowed per index (default: the sheet's, else 1)",
    )
    parser.add_argument("--include-non-pf", action="store_true", help="also write non-PF reads")
    parser.add_argument(
        "--i5-orientation", choices=("auto", "as-written", "reverse-complement"), default="auto"
    )
    parser.add_argument("--create-index-fastqs", action="store_true", default=None)
    parser.add_argument("--no-lane-splitting", action="store_true", default=None)
    parser.add_argument("--compression-level", type=int, choices=(0, 1, 2, 3), default=1)
    parser.add_argument("--tiles", help="only these tiles, e.g. 1_1101,1_1102")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    options = ConvertOptions(
        barcode_mismatches=(args.barcode_mismatches,) * 2
        if args.barcode_mismatches is not None
        else None,
        include_non_pf=args.include_non_pf,
        threads=args.threads,
        compression_level=args.compression_level,
        i5_orientation=args.i5_orientation,
        create_index_fastqs=args.create_index_fastqs,
        no_lane_splitting=args.no_lane_splitting,
        tiles=args.tiles.split(",") if args.tiles else None,
    )
    with Progress(None, "tiles") as bar:
        options.progress = lambda done, total: (setattr(bar.bar, "total", total), bar.advance())
        try:
            report = convert_run(args.run_folder, args.output_dir, args.sample_sheet, options)
        except ConversionError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    if args.json:
        import json

        print(json.dumps(report.as_dict(), indent=1, default=str))
    else:
        print(
            f"{report.clusters_written} clusters written ({report.undetermined} undetermined) "
            f"in {len(report.files)} files, {report.seconds:.2f} s; i5 {report.i5_reason}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
