"""Benchmark: the built-in BCL → FASTQ converter against Picard's
IlluminaBasecallsToFastq and against the floor, on the same generated runs.

Generates two run folders of realistic shape (default 2 lanes x 8 tiles x
151+8+8+151 cycles, 2,000,000 clusters in all, 96 dual-indexed samples, 10 % of
indexes with one mismatch, 5 % unknown, 0.5 % no-calls): one in CBCL (non-PF
clusters excluded, s.locs, as a NovaSeq writes) and one in per-tile BCL (.locs).
Then, for each:

- the built-in converter (`python -m processors.bcl.convert`), all cores and one;
- Picard `IlluminaBasecallsToFastq` (Debian `picard-tools`, set up with
  `apt-get install -y picard-tools libcommons-lang-java`: Debian's Picard
  2.27.5 needs commons-lang 2 on CBCL input but does not depend on it) with the
  same threads, the same matching (1 mismatch, inline), PF reads only, gzip
  level 1 like the converter, unsorted output (the converter writes in cluster
  order too) and no EAMSS;
- the floor: reading every input file a tile needs (CBCL blocks inflated) plus
  gzip-compressing (level 1, isal) and writing the converter's FASTQ bytes, with
  the same number of worker processes.

Prints clusters/s for each, the ratio converter/Picard (goal >= 10), the ratio
converter/floor (goal <= 1.5), peak RSS of the converter's process tree for the
whole run and for lane 1's tiles alone (must not grow with tiles), and the
one-thread figure. It also prints CPU seconds of each (the converter's whole
process tree, the floor's jobs and writer, Picard's JVM) and their ratios: on a
machine shared with other work, wall time follows the neighbours' load, CPU time
much less. Debian picard-tools and libcommons-lang-java are installed by
the caller (apt-get), never by `make test`.

    .venv/bin/python bench/demultiplex.py [--clusters 2000000] [--threads N]
        [--work DIR] [--skip-picard] [--repeat 2]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from isal import igzip, isal_zlib  # noqa: E402

from bench.bcl_runs import barcodes, generate, tile_numbers  # noqa: E402
from processors.bcl import formats  # noqa: E402

PYTHON = sys.executable


# ------------------------------------------------------------------ measuring


def tree_rss(root: int) -> int:
    """Resident bytes of a process and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/statm") as handle:
                rss[int(entry)] = int(handle.read().split()[1]) * page
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def children_cpu() -> float:
    """CPU seconds (user + system) of this process's finished, waited-for children and
    their own waited-for descendants."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


CPU: dict[str, float] = {}  # the last measured() command's CPU seconds, by log name


def measured(command: list[str], log: Path) -> tuple[float, int]:
    """Run a command; (seconds, peak resident bytes of its process tree). Its CPU
    seconds (the whole process tree) go to CPU[log.name]."""
    started = time.perf_counter()
    cpu = children_cpu()
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=PROJECT)
        peak = 0
        while process.poll() is None:
            peak = max(peak, tree_rss(process.pid))
            time.sleep(0.05)
    seconds = time.perf_counter() - started
    CPU[log.name] = children_cpu() - cpu
    if process.returncode:
        raise RuntimeError(f"{command[0]} failed ({process.returncode}); see {log}")
    return seconds, peak


def convert(run: Path, out: Path, threads: int, log: Path, tiles: str | None = None):
    shutil.rmtree(out, ignore_errors=True)
    command = [PYTHON, "-m", "processors.bcl.convert", str(run), str(out)]
    command += ["--threads", str(threads), "--json"]
    if tiles:
        command += ["--tiles", tiles]
    seconds, peak = measured(command, log)
    text = log.read_text()
    report = json.loads(text[text.index("{") :])
    return seconds, peak, report


def picard(run: Path, out: Path, threads: int, lanes: int, samples, log: Path):
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    params = out / "multiplex.params"
    lines = ["OUTPUT_PREFIX\tBARCODE_1\tBARCODE_2"]
    lines += [f"{out}/S{i + 1}\t{i7}\t{i5}" for i, (i7, i5) in enumerate(samples)]
    lines.append(f"{out}/undetermined\tN\tN")
    params.write_text("\n".join(lines) + "\n")
    command = [
        "PicardCommandLine", "IlluminaBasecallsToFastq",
        f"BASECALLS_DIR={run}/Data/Intensities/BaseCalls",
        *[f"LANE={lane}" for lane in range(1, lanes + 1)],
        "READ_STRUCTURE=151T8B8B151T", f"MULTIPLEX_PARAMS={params}",
        "RUN_BARCODE=1", "MACHINE_NAME=A01234", "FLOWCELL_BARCODE=HBENCHDSX5",
        f"NUM_PROCESSORS={threads}", "MATCH_BARCODES_INLINE=true", "MAX_MISMATCHES=1",
        "INCLUDE_NON_PF_READS=false", "SORT=false", "APPLY_EAMSS_FILTER=false",
        "COMPRESS_OUTPUTS=true", "COMPRESSION_LEVEL=1", f"TMP_DIR={out}",
    ]  # fmt: skip
    seconds, peak = measured(command, log)
    records = 0
    for path in out.glob("*.1.fastq.gz"):
        with gzip.open(path, "rb") as handle:
            records += sum(1 for _ in handle) // 4
    return seconds, peak, records


# ------------------------------------------------------------------ the floor


def read_tile_input(job: tuple[str, str, int, int, int]) -> tuple[int, float]:
    """Read every input file of one tile, as the converter must (CBCL blocks inflated);
    (bytes, CPU seconds taken)."""
    cpu = time.process_time()
    run_text, fmt, lane, tile, cycles = job
    run = Path(run_text)
    calls = run / "Data" / "Intensities" / "BaseCalls" / f"L{lane:03d}"
    total = len((calls / f"s_{lane}_{tile}.filter").read_bytes())
    if fmt == "bcl":
        total += len((run / "Data/Intensities" / f"L{lane:03d}/s_{lane}_{tile}.locs").read_bytes())
        for cycle in range(1, cycles + 1):
            total += len((calls / f"C{cycle}.1" / f"s_{lane}_{tile}.bcl").read_bytes())
    else:
        surface = tile // 1000
        for cycle in range(1, cycles + 1):
            header = formats.read_cbcl_header(calls / f"C{cycle}.1" / f"L{lane:03d}_{surface}.cbcl")
            record = header.tiles[tile]
            with header.path.open("rb") as handle:
                handle.seek(record.offset)
                total += len(igzip.decompress(handle.read(record.compressed)))
    return total, time.process_time() - cpu


def compress_range(job: tuple[str, int, int]) -> tuple[bytes, float]:
    """One gzip member of a range of the FASTQ bytes; (member, CPU seconds taken)."""
    cpu = time.process_time()
    path, start, length = job
    with open(path, "rb") as handle:
        handle.seek(start)
        data = handle.read(length)
    compressor = isal_zlib.compressobj(1, isal_zlib.DEFLATED, 31)
    return compressor.compress(data) + compressor.flush(), time.process_time() - cpu


def plain_fastq(converted: Path, plain: Path) -> int:
    """The converter's FASTQ bytes, uncompressed into one file (not timed)."""
    size = 0
    with plain.open("wb") as out:
        for path in sorted(converted.glob("*.fastq.gz")):
            with gzip.open(path, "rb") as handle:
                while chunk := handle.read(1 << 24):
                    out.write(chunk)
                    size += len(chunk)
    return size


def floor(
    run: Path, fmt: str, plain: Path, size: int, threads: int, scratch: Path
) -> tuple[float, float]:
    """Seconds to read the run's input and to gzip-write the converter's FASTQ bytes,
    and the CPU seconds that took (the workers' jobs and the writing parent)."""
    info = (run / "RunInfo.xml").read_text()
    tiles = [t.split("_") for t in info.split("<Tile>")[1:]]
    jobs = [(str(run), fmt, int(t[0]), int(t[1].split("<")[0]), 318) for t in tiles]
    chunk = 16 << 20
    ranges = [(str(plain), start, min(chunk, size - start)) for start in range(0, size, chunk)]
    subprocess.run(["sync"], check=False)
    with ProcessPoolExecutor(max_workers=threads) as pool:
        list(pool.map(read_tile_input, jobs[:1]))  # start the workers before timing
        cpu = self_cpu()
        started = time.perf_counter()
        cpu += -sum(taken for _, taken in pool.map(read_tile_input, jobs))
        reading = time.perf_counter() - started
        started = time.perf_counter()
        with (scratch / "floor.fastq.gz").open("wb") as out:
            for member, taken in pool.map(compress_range, ranges):
                out.write(member)
                cpu -= taken
        writing = time.perf_counter() - started
        cpu = self_cpu() - cpu
    return reading + writing, cpu


# ------------------------------------------------------------------ main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clusters", type=int, default=2_000_000)
    parser.add_argument("--lanes", type=int, default=2)
    parser.add_argument("--tiles", type=int, default=8, help="tiles per lane")
    parser.add_argument("--samples", type=int, default=96)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--work", type=Path, help="keep the runs here (default: a temp dir)")
    parser.add_argument("--skip-picard", action="store_true")
    parser.add_argument("--repeat", type=int, default=2, help="best of N, converter and floor")
    parser.add_argument("--formats", default="cbcl,bcl")
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="bench-demultiplex-"))
    work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    samples = list(zip(barcodes(rng, args.samples), barcodes(rng, args.samples), strict=True))
    results = {}
    try:
        for fmt in args.formats.split(","):
            run = work / f"run-{fmt}"
            if not (run / "SampleSheet.csv").exists():
                shutil.rmtree(run, ignore_errors=True)
                started = time.perf_counter()
                generate(run, fmt, args.lanes, args.tiles, args.clusters, samples)
                print(f"[{fmt}] generated in {time.perf_counter() - started:.1f} s", flush=True)
            out = work / f"out-{fmt}"
            # The machine may be shared: alternate converter and floor, keep the best.
            timings, floors, cpus, floor_cpus = [], [], [], []
            size = 0
            for attempt in range(args.repeat):
                seconds, peak, report = convert(run, out, args.threads, work / f"convert-{fmt}.log")
                timings.append(seconds)
                cpus.append(CPU[f"convert-{fmt}.log"])
                if attempt == 0:
                    size = plain_fastq(out, work / "fastq.plain")
                floor_wall, floor_cpu = floor(
                    run, fmt, work / "fastq.plain", size, args.threads, work
                )
                floors.append(floor_wall)
                floor_cpus.append(floor_cpu)
                print(
                    f"[{fmt}] attempt {attempt + 1}: built-in {seconds:.2f} s "
                    f"({cpus[-1]:.2f} CPU s), floor {floor_wall:.2f} s ({floor_cpu:.2f} CPU s)",
                    flush=True,
                )
            (work / "fastq.plain").unlink()
            seconds, floor_s = min(timings), min(floors)
            cpu_s, floor_cpu_s = min(cpus), min(floor_cpus)
            clusters = report["clusters_written"]
            figures = {"clusters": clusters, "builtin_s": seconds, "builtin_rss": peak}
            print(
                f"[{fmt}] built-in, {args.threads} threads: {seconds:.2f} s (best of "
                f"{args.repeat}), {clusters / seconds:,.0f} clusters/s, peak RSS "
                f"{peak / 2**20:,.0f} MiB, {report['undetermined']} undetermined",
                flush=True,
            )
            figures.update(
                floor_s=floor_s, fastq_bytes=size, builtin_cpu_s=cpu_s, floor_cpu_s=floor_cpu_s
            )
            print(
                f"[{fmt}] floor (read input + gzip-write {size / 2**20:,.0f} MiB of FASTQ): "
                f"{floor_s:.2f} s, {clusters / floor_s:,.0f} clusters/s; "
                f"built-in/floor {seconds / floor_s:.2f} (goal <= 1.5)",
                flush=True,
            )
            print(
                f"[{fmt}] CPU seconds (steadier than wall time on a shared machine): built-in "
                f"{cpu_s:.2f} (whole process tree: start-up, planning, reports), floor "
                f"{floor_cpu_s:.2f}; built-in/floor {cpu_s / floor_cpu_s:.2f}",
                flush=True,
            )
            one_s, one_peak, _ = convert(run, out, 1, work / f"convert-{fmt}-1.log")
            figures.update(one_thread_s=one_s)
            print(
                f"[{fmt}] built-in, 1 thread: {one_s:.2f} s, {clusters / one_s:,.0f} clusters/s "
                f"(all cores {one_s / seconds:.2f}x faster); peak RSS {one_peak / 2**20:,.0f} MiB",
                flush=True,
            )
            names = [f"1_{t}" for t in tile_numbers(args.tiles)]  # lane 1 only
            _, part_peak, _ = convert(
                run, work / "out-part", args.threads, work / "convert-part.log", ",".join(names)
            )
            print(
                f"[{fmt}] peak RSS with {len(names)} tiles: {part_peak / 2**20:,.0f} MiB, with "
                f"{args.lanes * args.tiles} tiles: {peak / 2**20:,.0f} MiB",
                flush=True,
            )
            figures.update(part_tiles=len(names), part_rss=part_peak)
            if not args.skip_picard:
                try:
                    picard_s, picard_peak, records = picard(
                        run, work / f"picard-{fmt}", args.threads, args.lanes, samples,
                        work / f"picard-{fmt}.log",
                    )  # fmt: skip
                except (RuntimeError, FileNotFoundError) as error:
                    print(f"[{fmt}] Picard did not run: {error}", flush=True)
                else:
                    figures.update(
                        picard_s=picard_s,
                        picard_rss=picard_peak,
                        picard_cpu_s=CPU[f"picard-{fmt}.log"],
                    )
                    print(
                        f"[{fmt}] Picard, {args.threads} threads: {picard_s:.2f} s, "
                        f"{records / picard_s:,.0f} clusters/s ({records} clusters written), "
                        f"peak RSS {picard_peak / 2**20:,.0f} MiB; built-in is "
                        f"{picard_s / seconds:.1f}x faster (goal >= 10); CPU seconds "
                        f"{CPU[f'picard-{fmt}.log']:.2f}, {CPU[f'picard-{fmt}.log'] / cpu_s:.1f}x "
                        "the built-in's",
                        flush=True,
                    )
            shutil.rmtree(work / f"picard-{fmt}", ignore_errors=True)
            results[fmt] = figures
        print(json.dumps(results, indent=1))
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
