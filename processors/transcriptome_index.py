"""The transcriptome index pipelines: a Salmon index of one organism's Ensembl
genome and annotation, for long reads (k=31) or short reads (k=23).

The recipe is refine.bio's: drop pseudogenes from the GTF, let RSEM's
`rsem-prepare-reference --gtf … --transcript-to-gene-map …` cut the transcripts
out of the genome, then `salmon index -k <k>` them. The index is stored as
`<Species>_<long|short>_k<k>_<release>.salmon_index.tar.gz`, one folder of that
name (without `.tar.gz`) holding the Salmon index and `transcript_to_gene.tsv`,
and recorded as a `TranscriptomeIndex` in the same transaction as its
ComputedFile and provenance.

This module is the pipeline's steps, in `STEPS`; what they use lives beside it:
`raw_inputs` (streaming gunzip; a damaged gzip fails the job without retry and
discards the download), `fasta`, `gtf` (the one-pass cleaning: pseudogenes,
malformed lines, the transcript-to-gene map), `index_tools` (salmon's and
RSEM's versions, the CPUs) and `packing` (the tarball, gzipped on all CPUs).

Every file is streamed: a vertebrate genome is 1 GB gzipped and 3 GB plain, so
nothing here reads a whole file into memory (the transcript-to-gene map, a few
hundred thousand ids, is the largest thing held).

Decisions worth knowing:

- A damaged gzip (truncated or corrupt) fails the job with `no_retry`: the bytes
  are the ones downloaded, so only downloading again can help (see `raw_inputs`).
- Malformed GTF lines are skipped, counted, logged with their line numbers, and
  recorded in the provenance's parameters; the job fails only when no
  transcript with an exon is left.
- The k-mer size comes from the batch (`metadata["k"]`, else 31 or 23); its
  limits are salmon's to judge, since they depend on how salmon was built, and
  salmon's own words end up in the failure reason.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from common.filenames import UnsafeName, check_name
from common.models import (
    ComputedFile,
    OriginalFile,
    ProcessorJob,
    TranscriptomeIndex,
)
from common.models.lengths import length_problem
from processors.external_tools import run_tool
from processors.fasta import count_fasta_records, gunzip_fasta
from processors.gtf import AnnotationCleaning, clean_gtf_file, write_gene_map
from processors.index_request import IndexRequest
from processors.index_tools import (
    available_cpus,
    rsem_package_version,
    rsem_reported_version,
    salmon_version,
)
from processors.packing import pack_folder
from processors.pipeline import (
    ProcessorContext,
    add_computed_file,
    run_processor,
    upload_processed_files,
)
from processors.raw_inputs import reading
from runner.pipeline import JobError
from runner.work_dirs import work_path

logger = logging.getLogger(__name__)

K_BY_LENGTH = {"long": 31, "short": 23}
GENOME_FORMATS = ("fasta.gz", "fasta", "fa.gz", "fa")
ANNOTATION_FORMATS = ("gtf.gz", "gtf")


# --- what to build ------------------------------------------------------------------------------


class IndexContext(ProcessorContext, total=False):
    """The transcriptome index pipeline's own keys."""

    length: str  # "long" or "short"
    index_request: IndexRequest
    genome_file: OriginalFile
    annotation_file: OriginalFile
    genome_fasta: Path
    annotation_gtf: Path
    annotation_cleaning: AnnotationCleaning
    transcript_to_gene_map: Path
    transcripts_fasta: Path
    index_dir: Path
    transcriptome_index: TranscriptomeIndex


def read_index_request(context: IndexContext) -> IndexContext:
    """Read which index to build from the job's one batch."""
    length = context["length"]
    batches = context["batches"]
    if len(batches) != 1:
        raise JobError(
            f"a transcriptome index job builds the index of one batch; processor job "
            f"{context['job_id']} has {len(batches)}",
            no_retry=True,
        )
    [batch] = batches
    metadata = batch.metadata or {}
    missing = [key for key in ("species", "release", "assembly") if not metadata.get(key)]
    if missing:
        raise JobError(
            f"batch {batch} does not say its {', '.join(missing)} (metadata: {metadata})",
            no_retry=True,
        )
    if batch.organism is None:
        raise JobError(f"batch {batch} has no organism", no_retry=True)
    k = metadata.get("k", K_BY_LENGTH[length])
    try:
        k = int(k)
    except (TypeError, ValueError):
        k = 0
    if k < 1:
        raise JobError(
            f"batch {batch} asks for k-mer size {metadata.get('k')!r}, not a positive integer",
            no_retry=True,
        )
    request = IndexRequest(
        batch=batch,
        organism=batch.organism,
        length=length,
        k=k,
        species=str(metadata["species"]),
        release=str(metadata["release"]),
        assembly=str(metadata["assembly"]),
    )
    try:
        check_name(f"{request.index_name}.tar.gz", "the index's name")
        if problem := length_problem(TranscriptomeIndex, "assembly", request.assembly):
            raise UnsafeName(problem)
    except UnsafeName as error:
        raise JobError(f"batch {batch}: {error}", no_retry=True) from None
    context["index_request"] = request
    context["parameters"].update(
        species=request.species,
        division=metadata.get("division", ""),
        release=request.release,
        assembly=request.assembly,
        taxonomy_id=metadata.get("taxonomy_id", request.organism.taxonomy_id),
        length=request.length,
        k=request.k,
    )
    return context


def _has_format(original: OriginalFile, formats: tuple[str, ...]) -> bool:
    if original.raw_format:
        return original.raw_format.lower() in formats
    return original.filename.lower().endswith(tuple("." + f for f in formats))


def find_genome_and_annotation(context: IndexContext) -> IndexContext:
    """Tell the genome FASTA from the GTF among the batch's files."""
    files = context["original_files"]
    genomes = [f for f in files if _has_format(f, GENOME_FORMATS)]
    annotations = [f for f in files if _has_format(f, ANNOTATION_FORMATS)]
    if len(genomes) != 1 or len(annotations) != 1:
        listed = ", ".join(f"{f.filename} ({f.raw_format or 'no format'})" for f in files)
        raise JobError(
            "a transcriptome index needs one genome FASTA (fasta.gz) and one GTF (gtf.gz); "
            f"the batch has {len(genomes)} and {len(annotations)}: {listed or 'no files'}",
            no_retry=True,
        )
    context["genome_file"], context["annotation_file"] = genomes[0], annotations[0]
    return context


# --- reading the inputs -------------------------------------------------------------------------


def decompress_genome(context: IndexContext) -> IndexContext:
    """Gunzip the genome into the job directory, checking on the way that it is
    FASTA with sequences in it."""
    original: OriginalFile = context["genome_file"]
    target = context["work_dir"] / "genome.fa"
    with reading(original):
        scan = gunzip_fasta(context["raw_paths"][original.pk], target)
    scan.check(original.filename)
    context["genome_fasta"] = target
    context["parameters"]["genome_sequences"] = scan.records
    return context


# --- cleaning the annotation --------------------------------------------------------------------


def clean_annotation(context: IndexContext) -> IndexContext:
    """Gunzip and clean the GTF in one pass (see `processors.gtf`); fail when no
    usable transcript is left."""
    original: OriginalFile = context["annotation_file"]
    target = context["work_dir"] / "annotation.gtf"
    with reading(original):
        cleaning = clean_gtf_file(context["raw_paths"][original.pk], target)
    if cleaning.malformed:
        logger.warning(
            "%s: skipped %d malformed line(s) of %d (%s)",
            original.filename,
            cleaning.malformed,
            cleaning.lines,
            cleaning.where_malformed(),
        )
    logger.info(
        "%s: removed %d pseudogene(s) (%d transcripts); %d transcripts left",
        original.filename,
        len(cleaning.pseudogenes),
        len(cleaning.pseudogene_transcripts),
        len(cleaning.transcript_to_gene),
    )
    if not cleaning.transcript_to_gene:
        raise JobError(
            f"{original.filename} has no usable transcript: of its {cleaning.lines} lines, "
            f"{cleaning.malformed} are malformed"
            + (f" ({cleaning.where_malformed()})" if cleaning.malformed else "")
            + f", and {len(cleaning.pseudogene_transcripts)} transcript(s) of "
            f"{len(cleaning.pseudogenes)} pseudogene(s) were removed; no exon of any other "
            "transcript is left",
            no_retry=True,
        )
    context["annotation_gtf"] = target
    context["annotation_cleaning"] = cleaning
    context["parameters"].update(
        pseudogenes_removed=len(cleaning.pseudogenes),
        pseudogene_transcripts_removed=len(cleaning.pseudogene_transcripts),
        malformed_lines_skipped=cleaning.malformed,
        transcripts_in_annotation=len(cleaning.transcript_to_gene),
    )
    return context


def write_transcript_to_gene_map(context: IndexContext) -> IndexContext:
    """`gene_id<TAB>transcript_id` per line, as RSEM's --transcript-to-gene-map reads it."""
    target = context["work_dir"] / "transcript_to_gene.tsv"
    write_gene_map(context["annotation_cleaning"].transcript_to_gene, target)
    context["transcript_to_gene_map"] = target
    return context


# --- the tools ----------------------------------------------------------------------------------


def record_tool_versions(context: IndexContext) -> IndexContext:
    """salmon's version, and RSEM's: its package's when there is one (RSEM's own
    report is stale, see `index_tools.rsem_reported_version`), and what it reports itself."""
    reported = rsem_reported_version()
    context["tools"].update(
        {
            "salmon": salmon_version(),
            "rsem": rsem_package_version() or reported,
            "rsem (as it reports itself)": reported,
        }
    )
    return context


def extract_transcripts(context: IndexContext) -> IndexContext:
    """RSEM cuts each transcript of the clean GTF out of the genome. The tools run
    in the job directory, so that the commands recorded in the provenance name
    their files as they are there, not by a scratch path."""
    work_dir: Path = context["work_dir"]
    prefix = work_dir / "rsem" / "transcriptome"
    prefix.parent.mkdir()
    run_tool(
        context,
        "rsem-prepare-reference",
        [
            "--gtf",
            context["annotation_gtf"].relative_to(work_dir),
            "--transcript-to-gene-map",
            context["transcript_to_gene_map"].relative_to(work_dir),
            context["genome_fasta"].relative_to(work_dir),
            prefix.relative_to(work_dir),
        ],
        cwd=work_dir,
    )
    context["genome_fasta"].unlink()  # the job's largest file, and nothing needs it now
    transcripts = prefix.with_name(prefix.name + ".transcripts.fa")
    extracted = count_fasta_records(transcripts)
    expected = context["parameters"]["transcripts_in_annotation"]
    if extracted < expected:
        logger.warning(
            "RSEM extracted %d of the annotation's %d transcripts (see its warnings above: "
            "usually chromosomes the genome FASTA does not have)",
            extracted,
            expected,
        )
    context["transcripts_fasta"] = transcripts
    context["parameters"]["transcripts_indexed"] = extracted
    return context


def build_salmon_index(context: IndexContext) -> IndexContext:
    request: IndexRequest = context["index_request"]
    threads = available_cpus()
    work_dir: Path = context["work_dir"]
    index_dir = work_path(work_dir, "index", request.index_name)
    index_dir.parent.mkdir()
    run_tool(
        context,
        "salmon",
        [
            "index",
            "-t",
            context["transcripts_fasta"].relative_to(work_dir),
            "-i",
            index_dir.relative_to(work_dir),
            "-k",
            request.k,
            "-p",
            threads,
        ],
        cwd=work_dir,
    )
    context["index_dir"] = index_dir
    context["parameters"]["salmon_threads"] = threads
    return context


# --- packing ------------------------------------------------------------------------------------


def pack_index(context: IndexContext) -> IndexContext:
    """`<index name>.tar.gz`: one folder holding the Salmon index and the
    transcript-to-gene map (for summarising a quantification by gene)."""
    index_dir: Path = context["index_dir"]
    shutil.copyfile(context["transcript_to_gene_map"], index_dir / "transcript_to_gene.tsv")
    target = context["work_dir"] / f"{index_dir.name}.tar.gz"
    pack_folder(index_dir, target, threads=available_cpus())
    add_computed_file(context, target, "tar.gz")
    return context


# --- recording the result -----------------------------------------------------------------------


def record_transcriptome_index(context: IndexContext, computed_files: list[ComputedFile]) -> None:
    """The TranscriptomeIndex row of the uploaded tarball. Called by
    upload_processed_files inside its transaction, so the row exists exactly when
    the tarball, its ComputedFile and its provenance do. A batch has one index:
    a later job's replaces an earlier one's row (its file stays, with its job)."""
    request: IndexRequest = context["index_request"]
    [tarball] = [f for f in computed_files if f.filename.endswith(".salmon_index.tar.gz")]
    TranscriptomeIndex.objects.filter(batch=request.batch).delete()
    context["transcriptome_index"] = TranscriptomeIndex.objects.create(
        organism=request.organism,
        batch=request.batch,
        length=request.length,
        k=request.k,
        source_release=request.release,
        assembly=request.assembly,
        salmon_version=salmon_version(),
        computed_file=tarball,
    )


def upload_index_and_record_it(context: IndexContext) -> IndexContext:
    """The upload, recording the TranscriptomeIndex row with the results."""
    context["record_results"] = record_transcriptome_index
    return upload_processed_files(context)


# --- the pipelines ------------------------------------------------------------------------------

# Before anything is fetched: a job that cannot succeed fails at once.
CHECKS = [read_index_request, find_genome_and_annotation]
STEPS = [
    decompress_genome,
    clean_annotation,
    write_transcript_to_gene_map,
    record_tool_versions,
    extract_transcripts,
    build_salmon_index,
    pack_index,
]


def build_index(job: ProcessorJob, length: str) -> IndexContext:
    return run_processor(
        job, STEPS, checks=CHECKS, upload=upload_index_and_record_it, length=length
    )


def build_long_index(job: ProcessorJob) -> IndexContext:
    """The `transcriptome_index_long` pipeline: k=31 unless the batch says otherwise."""
    return build_index(job, "long")


def build_short_index(job: ProcessorJob) -> IndexContext:
    """The `transcriptome_index_short` pipeline: k=23 unless the batch says otherwise."""
    return build_index(job, "short")
