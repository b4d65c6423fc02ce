"""The `salmon_quant` pipeline: one RNA-seq run (a batch of the `ena` source)
quantified with `salmon quant` against its organism's transcriptome index, and
summarised by gene.

The index is the organism's long one (k=31), or its short one (k=23) for reads
shorter than 75 bases, as refine.bio chooses; it is fetched from permanent
storage once per worker, into a cache keyed by the tarball's SHA-256. salmon's
`quant.sf`, `lib_format_counts.json` and `meta_info.json` are kept, with
`gene_quant.tsv` (per gene: the transcripts' estimated counts summed, and TPM at
gene level); the genes' counts and TPMs are also stored in one `Quantification`
row. A mapping rate under `REFINERY_MIN_MAPPING_RATE` marks the run low
quality; it does not fail the job.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tarfile
from pathlib import Path

from django.conf import settings

from common.models import (
    Batch,
    ComputedFile,
    ProcessorJob,
    Quantification,
    TranscriptomeIndex,
)
from common.storage import StorageError, permanent_storage, sha256_of_file
from processors.external_tools import run_tool
from processors.index_tools import available_cpus, salmon_version
from processors.pipeline import ProcessorContext, add_computed_file, run_processor
from runner.pipeline import JobError

SHORT_READS_BELOW = 75


class QuantContext(ProcessorContext, total=False):
    index: TranscriptomeIndex
    index_dir: Path
    quant_dir: Path
    genes: dict[str, tuple[float, float]]  # gene → (count, TPM)
    metrics: dict


def index_for(batch: Batch) -> tuple[str, TranscriptomeIndex | None]:
    """The index length a run needs (by its mean read length), and that index if
    its organism has one."""
    read_length = batch.metadata.get("mean_read_length")
    length = "short" if read_length is not None and read_length < SHORT_READS_BELOW else "long"
    index = (
        TranscriptomeIndex.objects.filter(organism_id=batch.organism_id, length=length)
        .select_related("computed_file")
        .order_by("-created_at")
        .first()
    )
    return length, index


def waits_for_index(job: ProcessorJob) -> str:
    """Why a salmon_quant job must stay `created`: its organism's index is not built
    yet (the Foreman sends it once it is). "" when it may run."""
    for batch in job.batches.all():
        length, index = index_for(batch)
        if index is None and batch.organism_id is not None:
            return f"waits for the {length} transcriptome index of {batch.organism}"
    return ""


def choose_index(context: QuantContext) -> QuantContext:
    """The organism's index for the run's read length (a check: before any input is fetched)."""
    batches = context["batches"]
    if len(batches) != 1:
        raise JobError(
            f"salmon_quant quantifies one run, the job has {len(batches)}", no_retry=True
        )
    batch = batches[0]
    if batch.organism is None:
        raise JobError(f"run {batch.accession} has no organism", no_retry=True)
    read_length = batch.metadata.get("mean_read_length")
    length, index = index_for(batch)
    if index is None:
        raise JobError(
            f"no {length} transcriptome index for {batch.organism}: build it (survey its "
            "Ensembl division) and retry this job",
            no_retry=True,
        )
    context["index"] = index
    context["parameters"].update(
        mean_read_length=read_length,
        index_length=length,
        index_k=index.k,
        index_file=index.computed_file.key,
        index_sha256=index.computed_file.sha256,
        index_release=index.source_release,
        index_assembly=index.assembly,
    )
    return context


def fetch_index(context: QuantContext) -> QuantContext:
    """The index, unpacked in the worker's cache (`<work dir>/index-cache/<sha256>`)."""
    computed: ComputedFile = context["index"].computed_file
    cache = Path(settings.REFINERY_WORK_DIR) / "index-cache"
    target = cache / computed.sha256
    if not (target / "ready").is_file():
        staging = cache / f"{computed.sha256}.{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            tarball = permanent_storage().fetch(computed.key, staging / "index.tar.gz")
        except StorageError as error:
            raise JobError(f"cannot fetch the index {computed.filename}: {error}") from error
        if sha256_of_file(tarball) != computed.sha256:
            raise JobError(f"the index {computed.filename} does not match its SHA-256")
        with tarfile.open(tarball, "r:gz") as tar:
            tar.extractall(staging / "unpacked", filter="data")
        tarball.unlink()
        (staging / "ready").touch()
        if not (target / "ready").is_file():  # not unpacked meanwhile by another job
            shutil.rmtree(target, ignore_errors=True)
            try:
                staging.rename(target)
            except OSError:
                if not (target / "ready").is_file():
                    raise
        shutil.rmtree(staging, ignore_errors=True)
    tops = [p for p in (target / "unpacked").iterdir() if p.is_dir()]
    if len(tops) != 1 or not (tops[0] / "transcript_to_gene.tsv").is_file():
        raise JobError(f"the index {computed.filename} has no transcript_to_gene.tsv")
    context["index_dir"] = tops[0]
    return context


def quantify(context: QuantContext) -> QuantContext:
    """`salmon quant -l A` on the run's reads: `-r` for one file, `-1`/`-2` for a pair."""
    files = sorted(context["original_files"], key=lambda f: f.filename)
    paths = [context["raw_paths"][f.pk] for f in files]
    if len(paths) == 1:
        reads = ["-r", paths[0]]
    elif len(paths) == 2:
        reads = ["-1", paths[0], "-2", paths[1]]
    else:
        raise JobError(f"a run has one or two FASTQ files, this one {len(paths)}", no_retry=True)
    threads = available_cpus()
    out = context["work_dir"] / "quant"
    run_tool(
        context,
        "salmon",
        ["quant", "-i", context["index_dir"], "-l", "A", *reads, "--validateMappings",
         "-p", threads, "-o", out],
    )  # fmt: skip
    context["tools"]["salmon"] = salmon_version()
    context["parameters"]["salmon_threads"] = threads
    context["quant_dir"] = out
    return context


def read_gene_map(path: Path) -> dict[str, str]:
    """transcript → gene, from `gene<TAB>transcript` lines."""
    mapping = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            gene, _, transcript = line.rstrip("\n").partition("\t")
            if transcript:
                mapping[transcript] = gene
    return mapping


def summarise_genes(context: QuantContext) -> QuantContext:
    """Counts and TPM per gene; salmon's mapping rate, library type and reads."""
    quant = context["quant_dir"]
    gene_of = read_gene_map(context["index_dir"] / "transcript_to_gene.tsv")
    counts: dict[str, float] = {}
    rates: dict[str, float] = {}
    with open(quant / "quant.sf", encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            gene = gene_of.get(row["Name"], row["Name"])
            reads, effective = float(row["NumReads"]), float(row["EffectiveLength"])
            counts[gene] = counts.get(gene, 0.0) + reads
            rates[gene] = rates.get(gene, 0.0) + (reads / effective if effective > 0 else 0.0)
    total = sum(rates.values()) or 1.0
    context["genes"] = {g: (counts[g], rates[g] * 1e6 / total) for g in sorted(counts)}
    meta = json.loads((quant / "aux_info" / "meta_info.json").read_text())
    formats = json.loads((quant / "lib_format_counts.json").read_text())
    rate = float(meta.get("percent_mapped", 0.0)) / 100
    context["metrics"] = {
        "mapping_rate": rate,
        "library_type": str(formats.get("expected_format", ""))[:16],
        "reads_processed": int(meta.get("num_processed", 0)),
        "low_quality": rate < settings.REFINERY_MIN_MAPPING_RATE,
    }
    if context["metrics"]["low_quality"]:
        print(f"mapping rate {rate:.1%}: low quality", flush=True)
    table = context["work_dir"] / "gene_quant.tsv"
    with open(table, "w", encoding="utf-8") as out:
        out.write("gene_id\tcount\ttpm\n")
        for gene, (count, tpm) in context["genes"].items():
            out.write(f"{gene}\t{count:.3f}\t{tpm:.6f}\n")
    shutil.copyfile(quant / "aux_info" / "meta_info.json", context["work_dir"] / "meta_info.json")
    add_computed_file(context, quant / "quant.sf", "tsv")
    add_computed_file(context, quant / "lib_format_counts.json", "json")
    add_computed_file(context, context["work_dir"] / "meta_info.json", "json")
    add_computed_file(context, table, "tsv")
    context["record_results"] = record_quantification
    return context


def record_quantification(context: QuantContext, computed: list[ComputedFile]) -> None:
    """The run's Quantification row, in the results' transaction."""
    batch = context["batches"][0]
    genes = context["genes"]
    Quantification.objects.filter(batch=batch).delete()  # a later job's replaces it
    Quantification.of_genes(
        list(genes),
        counts=[round(c, 3) for c, _ in genes.values()],
        tpm=[round(t, 6) for _, t in genes.values()],
        batch=batch,
        processor_job=context["job"],
        transcriptome_index=context["index"],
        **context["metrics"],
    ).save()


def quantify_run(job: ProcessorJob) -> QuantContext:
    return run_processor(job, [fetch_index, quantify, summarise_genes], checks=[choose_index])
