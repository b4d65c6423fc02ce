"""Benchmark: the transcriptome index pipeline against the same tools run by hand.

Generates a demo transcriptome of at least 20,000 transcripts (gzipped as
Ensembl serves it), then, on the same input:

- by hand: `gunzip` the genome; `gunzip | grep -v pseudogene` the GTF and `awk`
  its transcript-to-gene map; `rsem-prepare-reference --gtf …
  --transcript-to-gene-map …`; `salmon index -k 31 -p <cpus>`;
- the pipeline: `transcriptome_index_long` through `run_pipeline`, from
  temporary storage to a tarball in permanent storage with its provenance and
  TranscriptomeIndex row (Django on a throwaway SQLite REFINERY_HOME, local
  storage).

It prints both wall times, the pipeline's step by step, and the ratio
pipeline / by hand (goal: at most 1.10). The two alternate --repeat times (3),
each going first in turn, and the best time of each counts. It also prints the
ratio with the two tools' time taken as equal on both sides, which a busy
machine cannot blur.

    .venv/bin/python bench/transcriptome_index.py [--genes 11500] [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from statistics import median

PROJECT = Path(__file__).resolve().parent.parent
K = 31


def set_up_django(home: Path) -> None:
    """A throwaway embedded refinery: SQLite and local storage under `home`."""
    for name in ("DATABASE_URL", "REFINERY_TEMP_STORAGE", "REFINERY_PERMANENT_STORAGE",
                 "REFINERY_WORK_DIR"):  # fmt: skip
        os.environ.pop(name, None)
    os.environ["REFINERY_HOME"] = str(home)
    os.environ["DJANGO_SETTINGS_MODULE"] = "refinery.settings"
    os.environ.setdefault("REFINERY_LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(PROJECT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def generate_input(folder: Path, n_genes: int, seed: int):
    from demo.gzip_files import gzip_file
    from demo.organism import generate_organism

    organism = generate_organism(folder / "organism", n_genes=n_genes, seed=seed)
    stem = f"{organism.species.capitalize()}.{organism.assembly}"
    genome = gzip_file(organism.genome_fasta, folder / f"{stem}.dna.toplevel.fa.gz")
    gtf = gzip_file(organism.gtf, folder / f"{stem}.61.gtf.gz")
    organism.genome_fasta.unlink()
    organism.gtf.unlink()
    return organism, genome, gtf


MAP_AWK = (
    r"""awk -F'\t' '$3 == "transcript" {"""
    r"""match($9, /gene_id "[^"]+"/); g = substr($9, RSTART + 9, RLENGTH - 10); """
    r"""match($9, /transcript_id "[^"]+"/); t = substr($9, RSTART + 15, RLENGTH - 16); """
    r"""print g "\t" t}'"""
)


def by_hand(genome_gz: Path, gtf_gz: Path, folder: Path, threads: int) -> dict[str, float]:
    """The same commands an operator would type, timed one by one."""
    folder.mkdir(parents=True)
    commands = {
        "gunzip genome": f"gunzip -c {genome_gz} > genome.fa",
        "gunzip + grep -v pseudogene GTF": f"gunzip -c {gtf_gz} | grep -v pseudogene > clean.gtf",
        "awk transcript-to-gene map": f"{MAP_AWK} clean.gtf > map.tsv",
        "rsem-prepare-reference": "mkdir rsem && rsem-prepare-reference --gtf clean.gtf "
        "--transcript-to-gene-map map.tsv genome.fa rsem/transcriptome",
        "salmon index": f"salmon index -t rsem/transcriptome.transcripts.fa -i index -k {K} "
        f"-p {threads}",
    }
    times = {}
    with open(folder / "log.txt", "wb") as log:
        for name, command in commands.items():
            started = time.perf_counter()
            subprocess.run(
                ["bash", "-o", "pipefail", "-c", command],
                cwd=folder,
                check=True,
                stdout=log,
                stderr=log,
            )
            times[name] = time.perf_counter() - started
    return times


def stage_batch(genome_gz: Path, gtf_gz: Path, attempt: int):
    """What the surveyor and downloader leave: the files in temporary storage, a
    batch and a running processor job."""
    from common.models import Batch, Organism, OriginalFile, ProcessorJob
    from common.storage import temporary_storage
    from demo.organism import DEMO_ASSEMBLY, DEMO_SPECIES, DEMO_TAXONOMY_ID

    organism = Organism.get_or_create_by_name(DEMO_SPECIES, DEMO_TAXONOMY_ID)
    files = []
    for path, raw_format in ((genome_gz, "fasta.gz"), (gtf_gz, "gtf.gz")):
        original = OriginalFile.objects.create(
            source_url=f"https://bench.invalid/{attempt}/{path.name}",
            filename=path.name,
            raw_format=raw_format,
        )
        stored = temporary_storage().put_file(path, f"bench/{attempt}/{path.name}")
        original.record_download(stored.key, stored.size, stored.sha256)
        files.append(original)
    batch = Batch.objects.create(
        source="ensembl",
        accession=f"{DEMO_SPECIES}@61#{attempt}",
        variant=str(K),
        organism=organism,
        pipeline_required="transcriptome_index_long",
        metadata={"species": DEMO_SPECIES, "division": "EnsemblFungi", "release": "61",
                  "assembly": DEMO_ASSEMBLY, "taxonomy_id": DEMO_TAXONOMY_ID, "k": K},
    )  # fmt: skip
    batch.original_files.add(*files)
    job = ProcessorJob.objects.create(pipeline="transcriptome_index_long")
    job.batches.add(batch)
    job.mark_started("bench", "bench")
    return job


@contextlib.contextmanager
def output_to(log: Path) -> Iterator[None]:
    """Send this process's stdout and stderr (file descriptors 1 and 2, which the
    tools inherit) to `log`, as a worker sends them to the job's log."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log, "ab") as handle:
        os.dup2(handle.fileno(), 1)
        os.dup2(handle.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def through_the_pipeline(
    genome_gz: Path, gtf_gz: Path, attempt: int, log: Path
) -> dict[str, float]:
    """build_long_index on a staged batch, with each step timed."""
    from common.models import JobState
    from processors import transcriptome_index as index
    from processors.pipeline import processor_steps
    from runner.pipeline import run_pipeline

    job = stage_batch(genome_gz, gtf_gz, attempt)
    times: dict[str, float] = {}

    def timed(step):
        def run(context):
            started = time.perf_counter()
            try:
                return step(context)
            finally:
                times[step.__name__] = time.perf_counter() - started

        run.__name__ = step.__name__
        return run

    steps = processor_steps(index.STEPS, index.CHECKS, upload=index.upload_index_and_record_it)
    with output_to(log):
        started = time.perf_counter()
        run_pipeline(job, [timed(step) for step in steps], length="long")
        total = time.perf_counter() - started
    job.refresh_from_db()
    if job.state != JobState.SUCCEEDED:
        raise SystemExit(f"the pipeline failed: {job.failure_reason}")
    times["end_job and the rest"] = total - sum(times.values())
    return times


def show(title: str, times: dict[str, float]) -> None:
    print(f"  {title}: {sum(times.values()):.2f} s")
    for name, seconds in times.items():
        print(f"    {name:<36} {seconds:7.2f} s")


TOOL_STEPS = {
    "by hand": ("rsem-prepare-reference", "salmon index"),
    "pipeline": ("extract_transcripts", "build_salmon_index"),
}


def summarise(hand_runs: list[dict], pipeline_runs: list[dict]) -> None:
    """Best-of-N totals and their ratio; and, since the two tools' own time
    swings by tens of percent on a busy machine, what the pipeline adds around
    them against what the shell commands add around them."""

    def totals(runs: list[dict]) -> list[float]:
        return [sum(run.values()) for run in runs]

    def around_the_tools(runs: list[dict], side: str) -> float:
        return min(sum(run.values()) - sum(run[s] for s in TOOL_STEPS[side]) for run in runs)

    hand, pipeline = totals(hand_runs), totals(pipeline_runs)
    tools = min(sum(run[s] for s in TOOL_STEPS["by hand"]) for run in hand_runs)
    hand_rest = around_the_tools(hand_runs, "by hand")
    pipeline_rest = around_the_tools(pipeline_runs, "pipeline")
    for name, times in (("by hand: ", hand), ("pipeline:", pipeline)):
        print(f"{name} {min(times):.2f} s (best of {len(times)}; median {median(times):.2f} s)")
    print(
        f"around the tools: the pipeline {pipeline_rest:.2f} s, by hand {hand_rest:.2f} s; "
        f"with the tools' best time ({tools:.2f} s) on both sides the ratio is "
        f"{(tools + pipeline_rest) / (tools + hand_rest):.3f}"
    )
    print(f"ratio pipeline/by-hand: {min(pipeline) / min(hand):.3f} (goal <= 1.10)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--genes", type=int, default=11_500, help="genes to generate")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="alternate runs of each")
    parser.add_argument("--keep", action="store_true", help="keep the working folder")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="refinery-bench-"))
    try:
        set_up_django(home)
        from processors.index_tools import available_cpus

        threads = available_cpus()
        organism, genome_gz, gtf_gz = generate_input(home / "input", args.genes, args.seed)
        transcripts = len(organism.transcripts)
        if transcripts < 20_000:
            raise SystemExit(f"only {transcripts} transcripts: ask for more --genes")
        print(
            f"input: {transcripts} transcripts of {len(organism.genes)} genes "
            f"({len(organism.pseudogene_ids())} pseudogenes), {organism.base_count:,} bases; "
            f"genome {genome_gz.stat().st_size:,} B and GTF {gtf_gz.stat().st_size:,} B "
            f"gzipped; {threads} CPUs"
        )
        hand_runs, pipeline_runs = [], []
        for attempt in range(args.repeat):

            def run_by_hand(attempt: int = attempt) -> None:
                hand_runs.append(by_hand(genome_gz, gtf_gz, home / f"hand-{attempt}", threads))
                show(f"by hand, run {attempt + 1}", hand_runs[-1])
                shutil.rmtree(home / f"hand-{attempt}")

            def run_pipeline(attempt: int = attempt) -> None:
                log = home / "pipeline.log"
                pipeline_runs.append(through_the_pipeline(genome_gz, gtf_gz, attempt, log))
                show(f"pipeline, run {attempt + 1}", pipeline_runs[-1])

            # Alternate which goes first, so neither always runs on a warmer machine.
            for run in (run_by_hand, run_pipeline)[:: 1 if attempt % 2 == 0 else -1]:
                run()
        summarise(hand_runs, pipeline_runs)
    finally:
        if args.keep:
            print(f"kept {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
