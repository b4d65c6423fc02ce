"""The transcriptome index pipelines, run in-process on a generated demo organism
with the real rsem-prepare-reference and salmon, from temporary storage (put
there as the downloader would) to permanent storage."""

from __future__ import annotations

import csv
import gzip
import io
import os
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from common.models import (
    Batch,
    BatchStatus,
    ComputedFile,
    JobState,
    Organism,
    OriginalFile,
    ProcessorJob,
    Provenance,
    TranscriptomeIndex,
)
from common.models.choices import ProcessorPipeline
from common.storage import permanent_storage, sha256_of_file, temporary_storage
from demo.gzip_files import gzip_file, write_gzipped
from demo.organism import (
    DEMO_ASSEMBLY,
    DEMO_SPECIES,
    DEMO_TAXONOMY_ID,
    DemoOrganism,
    generate_organism,
)
from demo.reads import simulate_reads
from processors import transcriptome_index
from processors.fasta import FastaScan
from processors.gtf import clean_gtf
from processors.packing import ParallelGzipWriter
from runner.registry import work_for

RELEASE = "61"
SPECIES_FILE_STEM = DEMO_SPECIES.capitalize()  # Refinery_demonstrans
GENOME_NAME = f"{SPECIES_FILE_STEM}.{DEMO_ASSEMBLY}.dna.toplevel.fa.gz"
GTF_NAME = f"{SPECIES_FILE_STEM}.{DEMO_ASSEMBLY}.{RELEASE}.gtf.gz"
PIPELINES = {
    "long": (31, ProcessorPipeline.TRANSCRIPTOME_INDEX_LONG),
    "short": (23, ProcessorPipeline.TRANSCRIPTOME_INDEX_SHORT),
}


@dataclass
class Inputs:
    genome_gz: Path
    gtf_gz: Path


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> DemoOrganism:
    """A small organism: 60 genes, some of them pseudogenes."""
    return generate_organism(tmp_path_factory.mktemp("organism"), n_genes=60, seed=11)


@pytest.fixture(scope="module")
def demo_inputs(demo, tmp_path_factory) -> Inputs:
    """The organism's genome and GTF, gzipped and named as Ensembl names them."""
    folder = tmp_path_factory.mktemp("ensembl")
    return Inputs(
        genome_gz=gzip_file(demo.genome_fasta, folder / GENOME_NAME),
        gtf_gz=gzip_file(demo.gtf, folder / GTF_NAME),
    )


def stage_batches(
    genome_gz: Path, gtf_gz: Path, *, lengths=("long", "short"), metadata: dict | None = None
) -> dict[str, ProcessorJob]:
    """What the surveyor and the downloader leave behind: an Organism, a batch per
    index length sharing the genome and GTF, both files in temporary storage with
    their SHA-256, and a processor job per batch."""
    organism = Organism.get_or_create_by_name(DEMO_SPECIES, DEMO_TAXONOMY_ID)
    storage = temporary_storage()
    files = []
    for path, raw_format in ((genome_gz, "fasta.gz"), (gtf_gz, "gtf.gz")):
        original = OriginalFile.objects.create(
            source_url=f"https://ftp.ensembl.invalid/pub/fungi/release-{RELEASE}/{path.name}",
            filename=path.name,
            raw_format=raw_format,
        )
        stored = storage.put_file(path, f"downloader/job-1/{path.name}")
        original.record_download(stored.key, stored.size, stored.sha256)
        files.append(original)
    jobs = {}
    for length in lengths:
        k, pipeline = PIPELINES[length]
        batch = Batch.objects.create(
            source="ensembl",
            accession=f"{DEMO_SPECIES}@{RELEASE}",
            variant=str(k),
            organism=organism,
            pipeline_required=pipeline,
            status=BatchStatus.DOWNLOADED,
            metadata={
                "species": DEMO_SPECIES,
                "division": "EnsemblFungi",
                "release": RELEASE,
                "assembly": DEMO_ASSEMBLY,
                "taxonomy_id": DEMO_TAXONOMY_ID,
                "k": k,
                "length": length,
                **(metadata or {}),
            },
        )
        batch.original_files.add(*files)
        job = ProcessorJob.objects.create(pipeline=pipeline)
        job.batches.add(batch)
        jobs[length] = job
    return jobs


def run(job: ProcessorJob) -> ProcessorJob:
    """Run the job's pipeline in this process, as `manage.py run_job` would."""
    assert job.mark_started("test-worker", "test")
    work_for(job)(job)
    job.refresh_from_db()
    return job


def temp_keys() -> list[str]:
    return sorted(temporary_storage().list(""))


def assert_failed_cleanly(job: ProcessorJob, *phrases: str) -> None:
    """Failed with a reason that says what was wrong, and nothing half-written."""
    assert job.state == JobState.FAILED, job.failure_reason
    for phrase in phrases:
        assert phrase in job.failure_reason, job.failure_reason
    assert not ComputedFile.objects.exists()
    assert not Provenance.objects.exists()
    assert not TranscriptomeIndex.objects.exists()
    assert list(permanent_storage().list("")) == []


def untar_index(row: TranscriptomeIndex, into: Path) -> Path:
    """Fetch the index's tarball from permanent storage and unpack it."""
    tarball = permanent_storage().fetch(row.computed_file.key, into / row.computed_file.filename)
    assert sha256_of_file(tarball) == row.computed_file.sha256
    with tarfile.open(tarball, "r:gz") as tar:
        [top] = {Path(name).parts[0] for name in tar.getnames()}
        tar.extractall(into, filter="data")
    return into / top


def salmon_quant(index: Path, reads: Path, out: Path) -> list[dict]:
    subprocess.run(
        ["salmon", "quant", "-i", index, "-l", "A", "-r", reads, "-o", out, "-p", "2"],
        check=True,
        capture_output=True,
    )
    with open(out / "quant.sf") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def single_isoform_transcripts(demo: DemoOrganism, count: int) -> list[str]:
    """Protein-coding transcripts alone in their gene, long enough for 75-base reads."""
    chosen = [
        gene.transcript_ids[0]
        for gene in demo.genes.values()
        if gene.biotype == "protein_coding"
        and len(gene.transcript_ids) == 1
        and demo.transcripts[gene.transcript_ids[0]].length >= 400
    ]
    assert len(chosen) >= count
    return chosen[:count]


# --- a usable index ----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("length", ["long", "short"])
def test_the_index_quantifies_reads_of_known_transcripts(
    db, refinery_dirs, demo, demo_inputs, tmp_path, length
):
    jobs = stage_batches(demo_inputs.genome_gz, demo_inputs.gtf_gz, lengths=[length])
    job = run(jobs[length])
    assert job.state == JobState.SUCCEEDED, job.failure_reason

    row = TranscriptomeIndex.objects.get()
    k = PIPELINES[length][0]
    assert (row.length, row.k, row.source_release, row.assembly) == (
        length,
        k,
        RELEASE,
        DEMO_ASSEMBLY,
    )
    assert row.computed_file.filename == (
        f"Refinery_demonstrans_{length}_k{k}_{RELEASE}.salmon_index.tar.gz"
    )
    index = untar_index(row, tmp_path / "unpacked")
    assert (index / "transcript_to_gene.tsv").is_file()

    top = single_isoform_transcripts(demo, 3)
    abundances = dict(zip(top, (60, 30, 10), strict=True))
    reads = simulate_reads(demo, abundances, n_reads=3000, seed=5, out_path=tmp_path / "r.fq")
    quant = salmon_quant(index, reads, tmp_path / "quant")

    by_reads = sorted(quant, key=lambda r: -float(r["NumReads"]))
    assert [r["Name"] for r in by_reads[:3]] == top  # ranked as abundant as they were drawn
    assert sum(float(r["NumReads"]) for r in by_reads[:3]) >= 0.97 * 3000
    assert {r["Name"] for r in sorted(quant, key=lambda r: -float(r["TPM"]))[:3]} == set(top)

    # Every protein-coding transcript is in the index, no pseudogene is.
    indexed = {r["Name"] for r in quant}
    assert indexed == set(demo.protein_coding_transcript_ids())
    pseudogene_transcripts = {
        t for g in demo.pseudogene_ids() for t in demo.genes[g].transcript_ids
    }
    assert pseudogene_transcripts and not indexed & pseudogene_transcripts


@pytest.mark.slow
def test_both_indices_with_provenance_and_raw_files_removed_after_both(
    db, refinery_dirs, demo, demo_inputs
):
    jobs = stage_batches(demo_inputs.genome_gz, demo_inputs.gtf_gz)
    staged = temp_keys()
    assert len(staged) == 2

    assert run(jobs["long"]).state == JobState.SUCCEEDED
    assert temp_keys() == staged  # the short index still needs them
    assert run(jobs["short"]).state == JobState.SUCCEEDED, jobs["short"].failure_reason
    assert temp_keys() == []
    assert not OriginalFile.objects.filter(is_downloaded=True).exists()
    assert set(Batch.objects.values_list("status", flat=True)) == {BatchStatus.PROCESSED}

    rows = {row.length: row for row in TranscriptomeIndex.objects.all()}
    assert {length: row.k for length, row in rows.items()} == {"long": 31, "short": 23}
    organism = Organism.objects.get()
    for length, row in rows.items():
        job = jobs[length]
        assert row.organism == organism and row.batch == job.batches.get()
        assert row.salmon_version == "1.10.1"
        assert permanent_storage().exists(row.computed_file.key)
        assert row.computed_file.format == "tar.gz"
        assert list(row.computed_file.batches.all()) == [row.batch]

        provenance = row.computed_file.provenance
        assert provenance.processor_job == job
        assert provenance.processor_name == PIPELINES[length][1]
        assert provenance.tools["salmon"] == row.salmon_version
        assert provenance.tools["rsem"].startswith("1.3.")  # 1.3.3+dfsg-2+b1 from Debian
        assert provenance.tools["rsem (as it reports itself)"] == "1.3.1"
        programs = [command[0] for command in provenance.commands]
        assert programs == ["rsem-prepare-reference", "salmon"]
        rsem, salmon = provenance.commands
        assert "--gtf" in rsem and "--transcript-to-gene-map" in rsem
        assert salmon[:2] == ["salmon", "index"]
        assert salmon[salmon.index("-k") + 1] == str(row.k)
        assert salmon[salmon.index("-p") + 1] == str(len(os.sched_getaffinity(0)))  # all CPUs
        assert row.computed_file.key == (
            f"processor/transcriptome_index_{length}/job-{job.pk}/{row.computed_file.filename}"
        )
        assert {i["filename"]: i["sha256"] for i in provenance.inputs} == {
            GENOME_NAME: sha256_of_file(demo_inputs.genome_gz),
            GTF_NAME: sha256_of_file(demo_inputs.gtf_gz),
        }
        parameters = provenance.parameters
        assert parameters["release"] == RELEASE and parameters["assembly"] == DEMO_ASSEMBLY
        assert parameters["species"] == DEMO_SPECIES and parameters["k"] == row.k
        assert parameters["pseudogenes_removed"] == len(demo.pseudogene_ids())
        assert parameters["malformed_lines_skipped"] == 0
        assert parameters["transcripts_indexed"] == len(demo.protein_coding_transcript_ids())
        assert provenance.started_at <= provenance.ended_at


@pytest.mark.slow
def test_on_s3_storage(db, s3_storage, demo, demo_inputs):
    jobs = stage_batches(demo_inputs.genome_gz, demo_inputs.gtf_gz)
    assert temporary_storage().location("x").startswith("s3://")
    for length in ("long", "short"):
        job = run(jobs[length])
        assert job.state == JobState.SUCCEEDED, job.failure_reason
    assert temp_keys() == []
    for row in TranscriptomeIndex.objects.all():
        assert permanent_storage().exists(row.computed_file.key)
        with (
            permanent_storage().open(row.computed_file.key) as handle,
            tarfile.open(fileobj=io.BytesIO(handle.read()), mode="r:gz") as tar,
        ):
            names = tar.getnames()
        assert f"{row.computed_file.filename.removesuffix('.tar.gz')}/info.json" in names


# --- bad input ---------------------------------------------------------------------------------


def test_a_truncated_gzip_fails_without_retry_and_is_dropped_for_a_new_download(
    db, refinery_dirs, demo_inputs, tmp_path
):
    data = demo_inputs.genome_gz.read_bytes()
    truncated = tmp_path / GENOME_NAME
    truncated.write_bytes(data[: len(data) // 2])
    jobs = stage_batches(truncated, demo_inputs.gtf_gz, lengths=["long"])
    job = run(jobs["long"])
    assert_failed_cleanly(job, GENOME_NAME, "truncated", "retry the downloader job")
    assert job.no_retry
    genome = OriginalFile.objects.get(filename=GENOME_NAME)
    assert not genome.is_downloaded and not genome.temp_key
    assert temp_keys() == [OriginalFile.objects.get(filename=GTF_NAME).temp_key]


def test_a_corrupt_gzip_names_the_file(db, refinery_dirs, demo_inputs, tmp_path):
    data = bytearray(demo_inputs.gtf_gz.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
    corrupt = tmp_path / GTF_NAME
    corrupt.write_bytes(bytes(data))
    job = run(stage_batches(demo_inputs.genome_gz, corrupt, lengths=["short"])["short"])
    assert_failed_cleanly(job, GTF_NAME, "damaged")
    assert job.no_retry


@pytest.mark.slow
def test_malformed_gtf_lines_are_skipped_and_counted(db, refinery_dirs, demo, tmp_path, caplog):
    lines = demo.gtf.read_text().splitlines(keepends=True)
    broken = [
        "1\tensembl\texon\n",  # too few fields
        '1\tensembl\texon\tten\t20\t.\t+\t.\tgene_id "G"; transcript_id "T";\n',
        '1\tensembl\texon\t30\t20\t.\t+\t.\tgene_id "G"; transcript_id "T";\n',
        '1\tensembl\texon\t10\t20\t.\t+\t.\tgene_name "no ids";\n',
        '1\tensembl\texon\t10\t20\t.\t?\t.\tgene_id "G"; transcript_id "T";\n',
    ]
    for offset, line in enumerate(broken):
        lines.insert(10 + 7 * offset, line)
    gtf = write_gzipped("".join(lines), tmp_path / GTF_NAME)
    genome = gzip_file(demo.genome_fasta, tmp_path / GENOME_NAME)
    job = run(stage_batches(genome, gtf, lengths=["long"])["long"])
    assert job.state == JobState.SUCCEEDED, job.failure_reason
    parameters = job.provenance.parameters
    assert parameters["malformed_lines_skipped"] == len(broken)
    assert f"skipped {len(broken)} malformed line(s)" in caplog.text
    assert "(lines 11, 18, 25, 32, 39)" in caplog.text
    assert parameters["transcripts_indexed"] == len(demo.protein_coding_transcript_ids())


def test_a_gtf_with_nothing_usable_fails_clearly(db, refinery_dirs, demo, demo_inputs, tmp_path):
    pseudogene_lines = [
        line
        for line in demo.gtf.read_text().splitlines(keepends=True)
        if "pseudogene" in line or line.startswith("#")
    ]
    gtf = write_gzipped("".join(pseudogene_lines) + "not\ta\tgtf\tline\n", tmp_path / GTF_NAME)
    job = run(stage_batches(demo_inputs.genome_gz, gtf, lengths=["long"])["long"])
    assert_failed_cleanly(job, GTF_NAME, "no usable transcript", "1 are malformed (line ")
    assert f"of {len(demo.pseudogene_ids())} pseudogene(s) were removed" in job.failure_reason
    assert job.no_retry
    assert len(temp_keys()) == 2  # good files stay for whoever fixes the input


@pytest.mark.parametrize(
    "content", ["", "\n\n", ">chromosome_1 but no bases\n>chromosome_2\n", "ACGT\n>1\nACGT\n"]
)
def test_a_fasta_without_sequences_fails_clearly(db, refinery_dirs, demo_inputs, tmp_path, content):
    genome = write_gzipped(content, tmp_path / GENOME_NAME)
    job = run(stage_batches(genome, demo_inputs.gtf_gz, lengths=["long"])["long"])
    phrase = "not a FASTA file" if content.startswith("ACGT") else "has no sequences"
    assert_failed_cleanly(job, GENOME_NAME, phrase)
    assert job.no_retry


@pytest.mark.slow
def test_rsem_failing_puts_its_stderr_in_the_reason(db, refinery_dirs, demo, tmp_path):
    renamed = "".join(
        line if line.startswith("#") else "scaffold_" + line
        for line in demo.gtf.read_text().splitlines(keepends=True)
    )
    gtf = write_gzipped(renamed, tmp_path / GTF_NAME)
    genome = gzip_file(demo.genome_fasta, tmp_path / GENOME_NAME)
    job = run(stage_batches(genome, gtf, lengths=["long"])["long"])
    assert_failed_cleanly(
        job, "rsem-prepare-reference exited with code", "The reference contains no transcripts!"
    )
    assert "the chromosome it locates, scaffold_" in job.failure_reason


@pytest.mark.slow
def test_salmon_failing_puts_its_stderr_in_the_reason(db, refinery_dirs, demo_inputs):
    jobs = stage_batches(
        demo_inputs.genome_gz, demo_inputs.gtf_gz, lengths=["long"], metadata={"k": 33}
    )
    job = run(jobs["long"])
    assert_failed_cleanly(job, "salmon exited with code", "k must not be larger than 31")
    assert len(temp_keys()) == 2


@pytest.mark.slow
def test_a_failure_to_record_the_index_leaves_nothing_behind(
    db, refinery_dirs, demo_inputs, monkeypatch
):
    def refuse(**fields):
        raise RuntimeError("the database said no")

    monkeypatch.setattr(TranscriptomeIndex.objects, "create", refuse)
    job = run(stage_batches(demo_inputs.genome_gz, demo_inputs.gtf_gz, lengths=["long"])["long"])
    assert_failed_cleanly(job, "upload_index_and_record_it", "the database said no")
    assert len(temp_keys()) == 2


def test_a_batch_without_release_or_assembly_fails_clearly(db, refinery_dirs, demo_inputs):
    jobs = stage_batches(
        demo_inputs.genome_gz, demo_inputs.gtf_gz, lengths=["short"], metadata={"release": ""}
    )
    job = run(jobs["short"])
    assert_failed_cleanly(job, "does not say its release")
    assert job.no_retry


@pytest.mark.parametrize(
    "metadata, why",
    [({"assembly": "A" * 200}, "TranscriptomeIndex.assembly takes at most 128 characters"),
     ({"species": "x" * 300}, "the index's name")],
    ids=["long-assembly", "long-species"],
)  # fmt: skip
def test_a_batch_whose_index_could_not_be_named_or_recorded_fails_before_any_work(
    db, refinery_dirs, demo_inputs, metadata, why
):
    jobs = stage_batches(demo_inputs.genome_gz, demo_inputs.gtf_gz, lengths=["short"],
                         metadata=metadata)  # fmt: skip
    job = run(jobs["short"])
    assert_failed_cleanly(job, why)
    assert job.no_retry and "salmon" not in job.failure_reason


# --- the parts -----------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 64, 1 << 20])
def test_the_fasta_scan_counts_across_chunk_boundaries(chunk_size):
    fasta = b">1 dna:chromosome\nACGT\nAC\n\n>2 second\r\nGG\r\n>3 empty\n"
    scan = FastaScan()
    for start in range(0, len(fasta), chunk_size):
        scan.feed(fasta[start : start + chunk_size])
    assert (scan.records, scan.residues, scan.stray) == (3, 8, 0)


def test_clean_gtf_drops_pseudogenes_by_gene_or_transcript_biotype():
    def line(feature, gene, transcript, gene_biotype, transcript_biotype="protein_coding"):
        ids = f'gene_id "{gene}";' + (f' transcript_id "{transcript}";' if transcript else "")
        attributes = f'{ids} gene_biotype "{gene_biotype}"; transcript_biotype '
        return f'1\tensembl\t{feature}\t1\t10\t.\t+\t.\t{attributes}"{transcript_biotype}";\n'

    gtf = [
        "#!genome-build Demo1.0\n",
        line("gene", "G1", None, "protein_coding"),
        line("transcript", "G1", "T1", "protein_coding"),
        line("exon", "G1", "T1", "protein_coding"),
        line("exon", "G1", "T2", "protein_coding", "processed_pseudogene"),
        line("gene", "G2", None, "transcribed_unprocessed_pseudogene"),
        line("exon", "G2", "T3", "transcribed_unprocessed_pseudogene", "processed_transcript"),
    ]
    out = io.BytesIO()
    result = clean_gtf([text.encode() for text in gtf], out)
    assert out.getvalue().decode() == gtf[0] + gtf[3]  # RSEM reads exon lines only
    assert result.transcript_to_gene == {b"T1": b"G1"}
    assert result.pseudogenes == {b"G2"}
    assert result.pseudogene_transcripts == {b"T2", b"T3"}
    assert (result.lines, result.malformed) == (7, 0)


def test_the_parallel_gzip_writer_writes_what_gzip_reads():
    data = bytes(range(256)) * 5000
    out = io.BytesIO()
    writer = ParallelGzipWriter(out, threads=3, block_size=100_000)
    for start in range(0, len(data), 33_333):
        writer.write(data[start : start + 33_333])
    writer.close()
    assert gzip.decompress(out.getvalue()) == data
    assert out.getvalue().count(b"\x1f\x8b\x08") >= len(data) // 100_000


def test_the_pipelines_are_where_the_registry_says():
    long, short = (ProcessorJob(pipeline=f"transcriptome_index_{n}") for n in ("long", "short"))
    assert work_for(long) is transcriptome_index.build_long_index
    assert work_for(short) is transcriptome_index.build_short_index
