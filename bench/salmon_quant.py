"""Benchmark: the salmon_quant pipeline against the same `salmon quant` run by hand.

Generates a demo organism, builds its long (k=31) transcriptome index through
the index pipeline (not timed), simulates single-end 75-base reads from its
transcripts, then, on the same reads and index:

- by hand: `salmon quant -i <unpacked index> -l A -r reads.fastq.gz
  --validateMappings -p <cpus> -o out`;
- the pipeline: `salmon_quant` through `run_processor`, from the reads in
  temporary storage to quant.sf, the JSON files and gene_quant.tsv in permanent
  storage with their provenance and the Quantification row (Django on a
  throwaway SQLite REFINERY_HOME, local storage).

The pipeline's first run fetches and unpacks the index into the worker's cache
(shown apart, as "cold"); the runs that follow find it there, as a worker does
between jobs, and are the ones compared. The two alternate --repeat times, each
going first in turn; the best time of each counts. Prints the ratio pipeline /
by hand (goal: at most 1.10).

    .venv/bin/python bench/salmon_quant.py [--genes 2000] [--reads 500000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from bench.transcriptome_index import (  # noqa: E402 (after the path is set)
    generate_input,
    output_to,
    set_up_django,
    through_the_pipeline,
)


def by_hand(index: Path, reads: Path, out: Path, threads: int) -> float:
    started = time.perf_counter()
    subprocess.run(
        ["salmon", "quant", "-i", index, "-l", "A", "-r", reads, "--validateMappings",
         "-p", str(threads), "-o", out],
        check=True, capture_output=True,
    )  # fmt: skip
    return time.perf_counter() - started


def through_the_pipeline_once(reads: Path, attempt: int, log: Path) -> float:
    from common.models import Batch, JobState, Organism, OriginalFile, ProcessorJob
    from common.storage import temporary_storage
    from demo.organism import DEMO_SPECIES
    from processors.salmon_quant import quantify_run

    organism = Organism.get_or_create_by_name(DEMO_SPECIES, None)
    original = OriginalFile.objects.create(
        source_url=f"https://bench.invalid/{attempt}/{reads.name}", filename=reads.name,
        raw_format="fastq.gz",
    )  # fmt: skip
    stored = temporary_storage().put_file(reads, f"bench/quant-{attempt}/{reads.name}")
    original.record_download(stored.key, stored.size, stored.sha256)
    batch = Batch.objects.create(
        source="ena", accession=f"SRR{attempt:06d}", organism=organism,
        pipeline_required="salmon_quant", status="downloaded",
        metadata={"layout": "SINGLE", "mean_read_length": 75},
    )  # fmt: skip
    batch.original_files.add(original)
    job = ProcessorJob.objects.create(pipeline="salmon_quant")
    job.batches.add(batch)
    job.mark_started("bench", "bench")
    with output_to(log):
        started = time.perf_counter()
        quantify_run(job)
        elapsed = time.perf_counter() - started
    job.refresh_from_db()
    if job.state != JobState.SUCCEEDED:
        raise SystemExit(f"the pipeline failed: {job.failure_reason}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--genes", type=int, default=2000, help="genes to generate")
    parser.add_argument("--reads", type=int, default=500_000, help="reads to simulate")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="alternate runs of each")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="refinery-bench-"))
    try:
        set_up_django(home)
        from common.models import TranscriptomeIndex
        from common.storage import permanent_storage
        from demo.reads import simulate_reads
        from processors.index_tools import available_cpus

        threads = available_cpus()
        organism, genome_gz, gtf_gz = generate_input(home / "input", args.genes, args.seed)
        through_the_pipeline(genome_gz, gtf_gz, 0, home / "index.log")
        row = TranscriptomeIndex.objects.get()
        tarball = permanent_storage().fetch(row.computed_file.key, home / "index.tar.gz")
        with tarfile.open(tarball, "r:gz") as tar:
            tar.extractall(home / "unpacked", filter="data")
        [index] = list((home / "unpacked").iterdir())
        coding = [t for t in organism.protein_coding_transcript_ids()
                  if len(organism.transcript_sequences[t]) >= 75]  # fmt: skip
        abundances = {t: 1 + (i % 17) for i, t in enumerate(coding)}
        reads = simulate_reads(organism, abundances, args.reads, seed=1, gzipped=True,
                               out_path=home / "reads.fastq.gz")  # fmt: skip
        print(
            f"input: {len(coding)} transcripts, {args.reads:,} reads of 75 bases "
            f"({reads.stat().st_size:,} B gzipped); {threads} CPUs"
        )
        log = home / "pipeline.log"
        cold = through_the_pipeline_once(reads, 0, log)
        print(f"pipeline, cold index cache: {cold:.2f} s")
        hand, pipeline = [], []
        for attempt in range(1, args.repeat + 1):
            runs = [
                lambda a=attempt: hand.append(by_hand(index, reads, home / f"hand-{a}", threads)),
                lambda a=attempt: pipeline.append(through_the_pipeline_once(reads, a, log)),
            ]
            for run in runs[:: 1 if attempt % 2 else -1]:
                run()
            print(f"run {attempt}: by hand {hand[-1]:.2f} s, pipeline {pipeline[-1]:.2f} s")
        print(f"by hand:  {min(hand):.2f} s (best of {len(hand)})")
        print(f"pipeline: {min(pipeline):.2f} s (best of {len(pipeline)}, warm index cache)")
        print(f"ratio pipeline/by-hand: {min(pipeline) / min(hand):.3f} (goal <= 1.10)")
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
