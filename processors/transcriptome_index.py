"""The transcriptome index pipelines: a Salmon index of one organism's Ensembl
genome and annotation, for long reads (k=31) or short reads (k=23).

The recipe is refine.bio's: drop pseudogenes from the GTF, let RSEM's
`rsem-prepare-reference --gtf … --transcript-to-gene-map …` cut the transcripts
out of the genome, then `salmon index -k <k>` them. The index is stored as
`<Species>_<long|short>_k<k>_<release>.salmon_index.tar.gz`, one folder of that
name (without `.tar.gz`) holding the Salmon index and `transcript_to_gene.tsv`,
and recorded as a `TranscriptomeIndex` in the same transaction as its
ComputedFile and provenance.

Every file is streamed: a vertebrate genome is 1 GB gzipped and 3 GB plain, so
nothing here reads a whole file into memory (the transcript-to-gene map, a few
hundred thousand ids, is the largest thing held).

Decisions worth knowing:

- A damaged gzip (truncated or corrupt). `fetch_raw_files` has already checked
  the copy against the SHA-256 recorded at download, so the bytes are the ones
  that were downloaded: retrying this job would fetch the same bytes and fail
  the same way. The job fails with `no_retry`, and the damaged copy is removed
  from temporary storage and its download forgotten, so that retrying the
  downloader job fetches the file afresh instead of finding it "already
  downloaded".
- Pseudogenes: a gene whose `gene_biotype`, or a transcript whose
  `transcript_biotype`, contains "pseudogene" is dropped with all its lines.
  The GTF is cleaned in one pass, which relies on Ensembl's order (a gene's line
  before its transcripts' lines) and on Ensembl putting the biotypes on every
  line.
- The clean GTF holds the exon lines only: they are all RSEM reads (its output
  is byte for byte the same) and a third of the file.
- Malformed GTF lines (not 9 tab-separated fields; exon lines without sound
  coordinates, a strand, a `gene_id` and a `transcript_id`) are skipped,
  counted, logged with their line numbers, and recorded in the provenance's
  parameters; the job fails only when no transcript with an exon is left.
- The k-mer size comes from the batch (`metadata["k"]`, else 31 or 23); its
  limits are salmon's to judge, since they depend on how salmon was built, and
  salmon's own words end up in the failure reason.
- The tarball is gzipped on all CPUs as a series of gzip members (RFC 1952
  allows several; gzip, tar and Python read them as one stream), at level 1: a
  Salmon index is mostly packed bases and hashes, and level 6 saves under 1%.
"""

from __future__ import annotations

import gzip
import io
import logging
import os
import re
import shutil
import tarfile
import zlib
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from django.db import transaction

from common.models import Batch, ComputedFile, Organism, OriginalFile, TranscriptomeIndex
from common.storage import StorageError, temporary_storage
from processors.commands import run_tool, tool_version
from processors.pipeline import (
    JobContext,
    ProcessorJobError,
    add_computed_file,
    cleanup_raw_files,
    end_job,
    fetch_raw_files,
    prepare_job_dir,
    run_pipeline,
    start_job,
    upload_processed_files,
)

logger = logging.getLogger(__name__)

CHUNK = 1 << 20
K_BY_LENGTH = {"long": 31, "short": 23}
GENOME_FORMATS = ("fasta.gz", "fasta", "fa.gz", "fa")
ANNOTATION_FORMATS = ("gtf.gz", "gtf")
MALFORMED_EXAMPLES = 5
PACK_LEVEL = 1
PACK_BLOCK = 4 << 20


# --- what to build ------------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexRequest:
    """The one index a job builds, as its batch describes it."""

    batch: Batch
    organism: Organism
    length: str
    k: int
    species: str
    release: str
    assembly: str

    @property
    def index_name(self) -> str:
        """`Saccharomyces_cerevisiae_long_k31_61.salmon_index`"""
        species = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.species).capitalize()
        release = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.release)
        return f"{species}_{self.length}_k{self.k}_{release}.salmon_index"


def read_index_request(context: JobContext) -> JobContext:
    """Read which index to build from the job's one batch."""
    length = context["length"]
    batches = context["batches"]
    if len(batches) != 1:
        raise ProcessorJobError(
            f"a transcriptome index job builds the index of one batch; processor job "
            f"{context['job_id']} has {len(batches)}",
            no_retry=True,
        )
    [batch] = batches
    metadata = batch.metadata or {}
    missing = [key for key in ("species", "release", "assembly") if not metadata.get(key)]
    if missing:
        raise ProcessorJobError(
            f"batch {batch} does not say its {', '.join(missing)} (metadata: {metadata})",
            no_retry=True,
        )
    if batch.organism is None:
        raise ProcessorJobError(f"batch {batch} has no organism", no_retry=True)
    k = metadata.get("k", K_BY_LENGTH[length])
    try:
        k = int(k)
    except (TypeError, ValueError):
        k = 0
    if k < 1:
        raise ProcessorJobError(
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


def find_genome_and_annotation(context: JobContext) -> JobContext:
    """Tell the genome FASTA from the GTF among the batch's files."""
    files = context["original_files"]
    genomes = [f for f in files if _has_format(f, GENOME_FORMATS)]
    annotations = [f for f in files if _has_format(f, ANNOTATION_FORMATS)]
    if len(genomes) != 1 or len(annotations) != 1:
        listed = ", ".join(f"{f.filename} ({f.raw_format or 'no format'})" for f in files)
        raise ProcessorJobError(
            "a transcriptome index needs one genome FASTA (fasta.gz) and one GTF (gtf.gz); "
            f"the batch has {len(genomes)} and {len(annotations)}: {listed or 'no files'}",
            no_retry=True,
        )
    context["genome_file"], context["annotation_file"] = genomes[0], annotations[0]
    return context


# --- reading the inputs -------------------------------------------------------------------------


def open_input(path: Path) -> BinaryIO:
    """The file's bytes, gunzipped as they are read when its name ends in .gz."""
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def discard_damaged_download(original: OriginalFile) -> bool:
    """Remove a damaged input from temporary storage and forget its download, so
    that the downloader fetches it again rather than find it already there.
    Leaves alone a copy that a new download replaced meanwhile."""
    with transaction.atomic():
        locked = OriginalFile.objects.select_for_update().get(pk=original.pk)
        if not locked.temp_key or (locked.temp_key, locked.sha256) != (
            original.temp_key,
            original.sha256,
        ):
            return False
        try:
            temporary_storage().delete(locked.temp_key)
        except StorageError:
            logger.warning("could not remove damaged %s from temporary storage", locked.temp_key)
            return False
        locked.forget_download()
    return True


@contextmanager
def reading(original: OriginalFile) -> Iterator[None]:
    """Turn a damaged gzip stream into a failure that names the file (see the
    module's docstring for why it is not retried)."""
    try:
        yield
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        if isinstance(error, EOFError):
            detail = "truncated: the gzip stream ends before its end-of-stream marker"
        else:
            detail = f"corrupt: {error}"
        as_downloaded = ""
        if original.sha256:  # fetch_raw_files checked it
            as_downloaded = "it is the file as downloaded (its SHA-256 matches), so "
        if discard_damaged_download(original):
            remedy = "it was removed from temporary storage: retry the downloader job to fetch it"
        else:
            remedy = "download it again"
        raise ProcessorJobError(
            f"{original.filename} is damaged ({detail}): {as_downloaded}retrying this job "
            f"cannot help; {remedy}",
            no_retry=True,
        ) from None


class FastaScan:
    """Counts a FASTA file's records and residues as its bytes stream past, a
    chunk at a time (headers may span chunks)."""

    WHITESPACE = (b"\n", b"\r", b" ", b"\t")

    def __init__(self) -> None:
        self.records = 0
        self.residues = 0
        self.stray = 0  # non-blank bytes before the first header
        self.size = 0
        self._in_header = False
        self._line_start = True

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        pos, end = 0, len(chunk)
        while pos < end:
            if self._in_header:
                newline = chunk.find(b"\n", pos)
                if newline < 0:
                    return
                self._in_header, self._line_start, pos = False, True, newline + 1
            elif self._line_start and chunk[pos] == 0x3E:  # ">"
                self.records += 1
                self._in_header, pos = True, pos + 1
            else:
                header = chunk.find(b"\n>", pos)
                stop = end if header < 0 else header + 1
                text = chunk[pos:stop]
                residues = len(text) - sum(text.count(c) for c in self.WHITESPACE)
                if self.records:
                    self.residues += residues
                else:
                    self.stray += residues
                self._line_start = text.endswith(b"\n")
                pos = stop

    def check(self, filename: str) -> None:
        """Fail unless the file was FASTA with at least one sequence."""
        if self.stray:
            raise ProcessorJobError(
                f"{filename} is not a FASTA file: it does not start with a '>' header line",
                no_retry=True,
            )
        if not self.records:
            raise ProcessorJobError(
                f"{filename} has no sequences: no '>' header line in its {self.size} bytes",
                no_retry=True,
            )
        if not self.residues:
            raise ProcessorJobError(
                f"{filename} has no sequences: its {self.records} header line(s) have no bases",
                no_retry=True,
            )


def decompress_genome(context: JobContext) -> JobContext:
    """Gunzip the genome into the job directory, checking on the way that it is
    FASTA with sequences in it."""
    original: OriginalFile = context["genome_file"]
    target = context["work_dir"] / "genome.fa"
    scan = FastaScan()
    with (
        open(target, "wb") as out,
        reading(original),
        open_input(context["raw_paths"][original.pk]) as source,
    ):
        while chunk := source.read(CHUNK):
            scan.feed(chunk)
            out.write(chunk)
    scan.check(original.filename)
    context["genome_fasta"] = target
    context["parameters"]["genome_sequences"] = scan.records
    return context


# --- cleaning the annotation --------------------------------------------------------------------

_PSEUDOGENE = b"pseudogene"


def gtf_attribute(attributes: bytes, key: bytes) -> bytes | None:
    """The value of `key` (given with its opening quote: `b'gene_id "'`) in a GTF
    attribute field, or None. Plain `find`s: this runs on every exon line."""
    start = attributes.find(key)
    while start > 0 and attributes[start - 1] not in b" ;\t":  # a longer name ending in key
        start = attributes.find(key, start + 1)
    if start < 0:
        return None
    start += len(key)
    end = attributes.find(b'"', start)
    return attributes[start:end] if end >= 0 else None


@dataclass
class AnnotationCleaning:
    """What cleaning a GTF kept and dropped."""

    lines: int = 0
    malformed: int = 0
    malformed_examples: list[int] = field(default_factory=list)
    pseudogenes: set[bytes] = field(default_factory=set)
    pseudogene_transcripts: set[bytes] = field(default_factory=set)
    #: transcript id -> gene id of every transcript kept with at least one exon, in GTF order
    transcript_to_gene: dict[bytes, bytes] = field(default_factory=dict)

    def skip_malformed(self, number: int) -> None:
        self.malformed += 1
        if len(self.malformed_examples) < MALFORMED_EXAMPLES:
            self.malformed_examples.append(number)

    def where_malformed(self) -> str:
        """`line 7` or `lines 7, 12, 30, …`"""
        numbers = ", ".join(map(str, self.malformed_examples))
        more = ", …" if self.malformed > len(self.malformed_examples) else ""
        return f"line{'s' if self.malformed > 1 else ''} {numbers}{more}"


def read_lines(stream: BinaryIO) -> Iterator[bytes]:
    """A stream's lines (without their line ends), read a megabyte at a time."""
    rest = b""
    while chunk := stream.read(CHUNK):
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        yield from lines
    if rest:
        yield rest


def clean_gtf(lines: Iterable[bytes], out: BinaryIO) -> AnnotationCleaning:
    """Write a GTF's comment and exon lines to `out`, without pseudogenes and
    malformed lines, in one pass.

    Only exon lines are written: they are all RSEM reads (its output is byte for
    byte the same) and a third of an Ensembl GTF, so the other lines are only
    looked at for the pseudogenes they declare. A malformed line is one without
    9 tab-separated fields, or an exon line without sound coordinates, a strand,
    a gene_id and a transcript_id (RSEM would refuse it)."""
    result = AnnotationCleaning()
    pseudogenes, pseudogene_transcripts = result.pseudogenes, result.pseudogene_transcripts
    transcript_to_gene = result.transcript_to_gene
    write = out.write
    number = 0
    for number, line in enumerate(lines, start=1):
        if line.startswith(b"#"):
            write(line.rstrip(b"\r\n") + b"\n")
            continue
        if line.count(b"\t") != 8:
            if line.strip():
                result.skip_malformed(number)
            continue
        is_exon = line.split(b"\t", 3)[2] == b"exon"
        if not is_exon and _PSEUDOGENE not in line:
            continue  # neither read by RSEM nor declaring a pseudogene
        line = line.rstrip(b"\r\n")
        fields = line.split(b"\t")
        attributes = fields[8]
        gene_id = gtf_attribute(attributes, b'gene_id "')
        transcript_id = gtf_attribute(attributes, b'transcript_id "')
        if is_exon and (
            not fields[0]
            or not (fields[3].isdigit() and fields[4].isdigit())
            or not 0 < int(fields[3]) <= int(fields[4])
            or (fields[6] != b"+" and fields[6] != b"-")
            or not gene_id
            or not transcript_id
        ):
            result.skip_malformed(number)
            continue
        if _PSEUDOGENE in attributes:
            if gene_id and _PSEUDOGENE in (gtf_attribute(attributes, b'gene_biotype "') or b""):
                pseudogenes.add(gene_id)
            if transcript_id and _PSEUDOGENE in (
                gtf_attribute(attributes, b'transcript_biotype "') or b""
            ):
                pseudogene_transcripts.add(transcript_id)
        if gene_id in pseudogenes or transcript_id in pseudogene_transcripts:
            if transcript_id:
                pseudogene_transcripts.add(transcript_id)
            continue
        if is_exon:
            write(line + b"\n")
            if transcript_id not in transcript_to_gene:
                transcript_to_gene[transcript_id] = gene_id
    result.lines = number
    return result


def clean_annotation(context: JobContext) -> JobContext:
    """Gunzip and clean the GTF in one pass (see `clean_gtf`); fail when no usable
    transcript is left."""
    original: OriginalFile = context["annotation_file"]
    target = context["work_dir"] / "annotation.gtf"
    with (
        open(target, "wb") as out,
        reading(original),
        open_input(context["raw_paths"][original.pk]) as source,
    ):
        cleaning = clean_gtf(read_lines(source), out)
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
        raise ProcessorJobError(
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


def write_transcript_to_gene_map(context: JobContext) -> JobContext:
    """`gene_id<TAB>transcript_id` per line, as RSEM's --transcript-to-gene-map reads it."""
    target = context["work_dir"] / "transcript_to_gene.tsv"
    with open(target, "wb") as out:
        for transcript_id, gene_id in context["annotation_cleaning"].transcript_to_gene.items():
            out.write(gene_id + b"\t" + transcript_id + b"\n")
    context["transcript_to_gene_map"] = target
    return context


# --- the tools ----------------------------------------------------------------------------------


def salmon_version() -> str:
    """`1.10.1`, from salmon's `salmon 1.10.1`."""
    return tool_version("salmon", "--version").removeprefix("salmon ").strip()


def rsem_reported_version() -> str:
    """`1.3.1`, from `Current version: RSEM v1.3.1`. rsem-prepare-reference has
    no --version; rsem-calculate-expression's is RSEM's one version string, which
    upstream left at v1.3.1 in releases 1.3.2 and 1.3.3."""
    reported = tool_version("rsem-calculate-expression", "--version")
    return reported.removeprefix("Current version:").strip().removeprefix("RSEM v")


def rsem_package_version() -> str:
    """The installed Debian package's version (`1.3.3+dfsg-2+b1`), which says
    which RSEM release this really is; empty without dpkg or the package."""
    version = tool_version("dpkg-query", "--show", "--showformat=${Version}\n", "rsem")
    return "" if version == "unknown" or " " in version else version


def available_cpus() -> int:
    """The CPUs this process may run on (a container's share, not the host's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def record_tool_versions(context: JobContext) -> JobContext:
    """salmon's version, and RSEM's: its package's when there is one (RSEM's own
    report is stale, see `rsem_reported_version`), and what it reports itself."""
    reported = rsem_reported_version()
    context["tools"].update(
        {
            "salmon": salmon_version(),
            "rsem": rsem_package_version() or reported,
            "rsem (as it reports itself)": reported,
        }
    )
    return context


def _count_fasta_records(path: Path) -> int:
    count = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            count += chunk.count(b">")
    return count


def extract_transcripts(context: JobContext) -> JobContext:
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
    extracted = _count_fasta_records(transcripts)
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


def build_salmon_index(context: JobContext) -> JobContext:
    request: IndexRequest = context["index_request"]
    threads = available_cpus()
    work_dir: Path = context["work_dir"]
    index_dir = work_dir / "index" / request.index_name
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


class ParallelGzipWriter(io.RawIOBase):
    """A write-only stream that gzips what is written to it on several threads:
    every `block_size` bytes become one gzip member, written in order. zlib lets
    go of the GIL while it compresses, so the threads really run at once."""

    def __init__(
        self, out: BinaryIO, threads: int, level: int = PACK_LEVEL, block_size: int = PACK_BLOCK
    ):
        super().__init__()
        self._out, self._level, self._block_size = out, level, block_size
        self._pool = ThreadPoolExecutor(max(1, threads), thread_name_prefix="gzip")
        self._pending: deque[Future[bytes]] = deque()
        self._max_pending = 2 * max(1, threads)
        self._buffer = bytearray()
        self._members = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._buffer += data
        while len(self._buffer) >= self._block_size:
            self._submit(bytes(self._buffer[: self._block_size]))
            del self._buffer[: self._block_size]
        return len(data)

    def _submit(self, block: bytes) -> None:
        self._pending.append(self._pool.submit(gzip.compress, block, self._level, mtime=0))
        self._members += 1
        while len(self._pending) > self._max_pending:
            self._out.write(self._pending.popleft().result())

    def close(self) -> None:
        if self.closed:
            return
        try:
            if self._buffer or not self._members:
                self._submit(bytes(self._buffer))
                self._buffer.clear()
            while self._pending:
                self._out.write(self._pending.popleft().result())
        finally:
            self._pool.shutdown(cancel_futures=True)
            super().close()


def _anonymous(member: tarfile.TarInfo) -> tarfile.TarInfo:
    member.uid = member.gid = 0
    member.uname = member.gname = ""
    return member


def pack_index(context: JobContext) -> JobContext:
    """`<index name>.tar.gz`: one folder holding the Salmon index and the
    transcript-to-gene map (for summarising a quantification by gene)."""
    index_dir: Path = context["index_dir"]
    shutil.copyfile(context["transcript_to_gene_map"], index_dir / "transcript_to_gene.tsv")
    target = context["work_dir"] / f"{index_dir.name}.tar.gz"
    with open(target, "wb") as raw:
        compressed = ParallelGzipWriter(raw, threads=available_cpus())
        try:
            with tarfile.open(
                fileobj=compressed, mode="w|", bufsize=CHUNK, copybufsize=CHUNK
            ) as tar:
                tar.add(index_dir, arcname=index_dir.name, filter=_anonymous)
        finally:
            compressed.close()
    add_computed_file(context, target, "tar.gz")
    return context


# --- recording the result -----------------------------------------------------------------------


def record_transcriptome_index(context: JobContext, computed_files: list[ComputedFile]) -> None:
    """The TranscriptomeIndex row of the uploaded tarball. Called by
    upload_processed_files inside its transaction, so the row exists exactly when
    the tarball, its ComputedFile and its provenance do."""
    request: IndexRequest = context["index_request"]
    [tarball] = [f for f in computed_files if f.filename.endswith(".salmon_index.tar.gz")]
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


def upload_index_and_record_it(context: JobContext) -> JobContext:
    context["record_results"] = record_transcriptome_index
    return upload_processed_files(context)


# --- the pipelines ------------------------------------------------------------------------------

STEPS = [
    start_job,
    read_index_request,
    find_genome_and_annotation,
    prepare_job_dir,
    fetch_raw_files,
    decompress_genome,
    clean_annotation,
    write_transcript_to_gene_map,
    record_tool_versions,
    extract_transcripts,
    build_salmon_index,
    pack_index,
    upload_index_and_record_it,
    cleanup_raw_files,
    end_job,
]


def build_index(job_id: int, length: str) -> JobContext:
    return run_pipeline({"job_id": job_id, "length": length}, STEPS)


def build_long_index(job_id: int) -> JobContext:
    """The `transcriptome_index_long` pipeline: k=31 unless the batch says otherwise."""
    return build_index(job_id, "long")


def build_short_index(job_id: int) -> JobContext:
    """The `transcriptome_index_short` pipeline: k=23 unless the batch says otherwise."""
    return build_index(job_id, "short")
