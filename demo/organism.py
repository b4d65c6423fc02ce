"""A deterministic, clearly fake demo organism in Ensembl's file formats.

:func:`generate_organism` writes a genome FASTA and a gene annotation GTF shaped like Ensembl's
(``>1 dna:chromosome chromosome:Demo1.0:1:1:N:1 REF`` headers, 60 bases a line; a GTF with
``#!genome-build`` header lines and gene / transcript / exon / CDS / start_codon / stop_codon /
five_prime_utr / three_prime_utr lines carrying Ensembl's attributes). The same arguments give
the same bytes. Protein-coding genes have one to three transcripts of one to six exons each,
on both strands; a share of the genes are pseudogenes (``pseudogene``,
``processed_pseudogene``, ``unprocessed_pseudogene``), which a transcriptome index must drop.
Genes never overlap.

Nothing about this organism is real: the species ``refinery_demonstrans``, the taxonomy id
:data:`DEMO_TAXONOMY_ID` (far above any NCBI taxonomy id assigned so far) and the assembly
accession :data:`DEMO_ASSEMBLY_ACCESSION` (version 0, which INSDC never issues) are made up
so that they cannot be mistaken for real data. Sequences are uniformly random A/C/G/T; the
coding regions are placed consistently (frames, start and stop codon coordinates) but their
bases are not made to read as ATG or a stop codon.

The files are written by :mod:`demo.fasta` and :mod:`demo.gtf_writer`;
:func:`demo.reads.simulate_reads` draws FASTQ reads from the transcripts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from demo.fasta import (
    FASTA_LINE_WIDTH,
    read_fasta,
    reverse_complement,
    write_genome_fasta,
)
from demo.gtf_writer import write_gtf

__all__ = [
    "DEMO_ASSEMBLY",
    "DEMO_ASSEMBLY_ACCESSION",
    "DEMO_DISPLAY_NAME",
    "DEMO_SCIENTIFIC_NAME",
    "DEMO_SPECIES",
    "DEMO_TAXONOMY_ID",
    "PSEUDOGENE_BIOTYPES",
    "DemoGene",
    "DemoOrganism",
    "DemoTranscript",
    "generate_organism",
]

DEMO_SPECIES = "refinery_demonstrans"
DEMO_SCIENTIFIC_NAME = "Refinery demonstrans"
DEMO_DISPLAY_NAME = "Refinery demonstrans (demo organism)"
DEMO_ASSEMBLY = "Demo1.0"
#: Fake: NCBI taxonomy ids are assigned in sequence and are still in the low millions.
DEMO_TAXONOMY_ID = 900_000_001
#: Fake: INSDC assembly accessions start at version 1.
DEMO_ASSEMBLY_ACCESSION = "GCA_000000000.0"
DEMO_GENEBUILD = "2025-01-Demo"

PSEUDOGENE_BIOTYPES = ("pseudogene", "processed_pseudogene", "unprocessed_pseudogene")

_ACGT_TABLE = bytes(b"ACGT"[i % 4] for i in range(256))


@dataclass(frozen=True)
class DemoTranscript:
    """One transcript. Coordinates are 1-based and inclusive, like GTF's."""

    transcript_id: str
    gene_id: str
    transcript_name: str
    biotype: str
    chromosome: str
    strand: str
    #: Exons in transcription order (5' to 3'), each ``(start, end)`` on the chromosome.
    exons: tuple[tuple[int, int], ...]
    #: Exon ids, in the same order as ``exons`` (shared exons share ids, as in Ensembl).
    exon_ids: tuple[str, ...] = ()
    #: The coding region in spliced-transcript coordinates, 0-based half-open, including the
    #: stop codon; ``None`` for non-coding transcripts.
    coding: tuple[int, int] | None = None
    protein_id: str | None = None

    @property
    def start(self) -> int:
        return min(start for start, _ in self.exons)

    @property
    def end(self) -> int:
        return max(end for _, end in self.exons)

    @property
    def length(self) -> int:
        return sum(end - start + 1 for start, end in self.exons)


@dataclass(frozen=True)
class DemoGene:
    gene_id: str
    gene_name: str
    biotype: str
    chromosome: str
    strand: str
    start: int
    end: int
    transcript_ids: tuple[str, ...]


@dataclass
class DemoOrganism:
    """What :func:`generate_organism` wrote, and the truth about it."""

    species: str
    scientific_name: str
    display_name: str
    assembly: str
    assembly_accession: str
    taxonomy_id: int
    genebuild: str
    seed: int
    directory: Path
    genome_fasta: Path
    gtf: Path
    #: Chromosome name -> length in bases, in file order.
    chromosomes: dict[str, int]
    genes: dict[str, DemoGene]
    transcripts: dict[str, DemoTranscript]
    #: Transcript id -> spliced sequence, 5' to 3' (reverse-complemented on the - strand).
    transcript_sequences: dict[str, str] = field(repr=False)

    @property
    def transcript_to_gene(self) -> dict[str, str]:
        return {tid: t.gene_id for tid, t in self.transcripts.items()}

    @property
    def transcript_biotypes(self) -> dict[str, str]:
        return {tid: t.biotype for tid, t in self.transcripts.items()}

    @property
    def gene_biotypes(self) -> dict[str, str]:
        return {gid: g.biotype for gid, g in self.genes.items()}

    @property
    def base_count(self) -> int:
        return sum(self.chromosomes.values())

    def transcript_ids(self, *, biotype: str | None = None) -> list[str]:
        """Transcript ids in GTF order, optionally only those of one transcript biotype."""
        return [
            tid for tid, t in self.transcripts.items() if biotype is None or t.biotype == biotype
        ]

    def protein_coding_transcript_ids(self) -> list[str]:
        return self.transcript_ids(biotype="protein_coding")

    def pseudogene_ids(self) -> list[str]:
        return [gid for gid, g in self.genes.items() if g.biotype in PSEUDOGENE_BIOTYPES]

    def read_genome(self) -> dict[str, str]:
        """The genome FASTA as ``{sequence name: sequence}``."""
        return read_fasta(self.genome_fasta)

    def write_transcriptome_fasta(
        self, path: str | Path, *, biotypes: tuple[str, ...] | None = None
    ) -> Path:
        """Write the spliced transcripts (optionally only some biotypes) as FASTA."""
        path = Path(path)
        with open(path, "w", encoding="ascii", newline="\n") as out:
            for tid, transcript in self.transcripts.items():
                if biotypes is not None and transcript.biotype not in biotypes:
                    continue
                out.write(f">{tid}\n")
                sequence = self.transcript_sequences[tid]
                for i in range(0, len(sequence), FASTA_LINE_WIDTH):
                    out.write(sequence[i : i + FASTA_LINE_WIDTH] + "\n")
        return path


# --------------------------------------------------------------------------- generation


@dataclass
class _GenePlan:
    biotype: str
    strand: str
    exon_lengths: list[int]
    intron_lengths: list[int]
    #: Each transcript as the sorted indexes (left to right on the chromosome) of its exons.
    transcript_exons: list[tuple[int, ...]]

    @property
    def span(self) -> int:
        return sum(self.exon_lengths) + sum(self.intron_lengths)


def _plan_biotypes(rng: random.Random, n_genes: int, pseudogene_fraction: float) -> list[str]:
    n_pseudo = round(n_genes * pseudogene_fraction)
    if n_genes >= 6 and pseudogene_fraction > 0:
        n_pseudo = max(n_pseudo, len(PSEUDOGENE_BIOTYPES))
    n_pseudo = min(n_pseudo, n_genes - 1) if n_genes > 1 else 0
    positions = sorted(rng.sample(range(n_genes), n_pseudo))
    biotypes = ["protein_coding"] * n_genes
    for k, position in enumerate(positions):
        biotypes[position] = PSEUDOGENE_BIOTYPES[k % len(PSEUDOGENE_BIOTYPES)]
    return biotypes


def _plan_gene(rng: random.Random, biotype: str, max_transcripts: int, max_exons: int) -> _GenePlan:
    strand = "+" if rng.random() < 0.5 else "-"
    if biotype == "processed_pseudogene":
        n_exons = 1
    elif biotype == "unprocessed_pseudogene":
        n_exons = rng.randint(1, min(4, max_exons))
    elif biotype == "pseudogene":
        n_exons = rng.randint(1, min(3, max_exons))
    else:
        n_exons = rng.randint(1, max_exons)
    exon_lengths = [rng.randint(100, 450) for _ in range(n_exons)]
    intron_lengths = [rng.randint(70, 900) for _ in range(n_exons - 1)]
    all_exons = tuple(range(n_exons))
    transcript_exons = [all_exons]
    if biotype == "protein_coding":
        wanted = rng.randint(1, max_transcripts)
        attempts = 0
        while len(transcript_exons) < wanted and attempts < 20:
            attempts += 1
            subset = tuple(i for i in all_exons if rng.random() < 0.7)
            if subset and subset not in transcript_exons:
                transcript_exons.append(subset)
    return _GenePlan(biotype, strand, exon_lengths, intron_lengths, transcript_exons)


def generate_organism(
    out_dir: str | Path,
    *,
    species: str = DEMO_SPECIES,
    scientific_name: str | None = None,
    display_name: str | None = None,
    assembly: str = DEMO_ASSEMBLY,
    assembly_accession: str = DEMO_ASSEMBLY_ACCESSION,
    taxonomy_id: int = DEMO_TAXONOMY_ID,
    genebuild: str = DEMO_GENEBUILD,
    n_genes: int = 200,
    n_chromosomes: int = 3,
    max_transcripts_per_gene: int = 3,
    max_exons_per_transcript: int = 6,
    pseudogene_fraction: float = 0.1,
    id_prefix: str = "DEMO",
    seed: int = 0,
    genome_name: str = "genome.fa",
    gtf_name: str = "genes.gtf",
) -> DemoOrganism:
    """Write ``genome.fa`` and ``genes.gtf`` for a demo organism into ``out_dir``.

    Deterministic: the same arguments give byte-identical files. Gene ids look like
    ``DEMOG00000000001`` (``id_prefix`` + ``G`` + 11 digits), transcripts ``DEMOT…``, exons
    ``DEMOE…``, proteins ``DEMOP…``. 15,000 genes (about 27,000 transcripts, 40 Mb of genome)
    take a few seconds.
    """
    if n_genes < 1:
        raise ValueError("n_genes must be at least 1")
    if not 1 <= n_chromosomes <= n_genes:
        raise ValueError("n_chromosomes must be between 1 and n_genes")
    if not max_exons_per_transcript >= 1 or not max_transcripts_per_gene >= 1:
        raise ValueError("max_exons_per_transcript and max_transcripts_per_gene must be >= 1")
    if not 0 <= pseudogene_fraction < 1:
        raise ValueError("pseudogene_fraction must be in [0, 1)")
    scientific_name = scientific_name or species.replace("_", " ").capitalize()
    if display_name is None:
        display_name = (
            DEMO_DISPLAY_NAME if species == DEMO_SPECIES else f"{scientific_name} (demo organism)"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)

    biotypes = _plan_biotypes(rng, n_genes, pseudogene_fraction)
    plans = [
        _plan_gene(rng, biotype, max_transcripts_per_gene, max_exons_per_transcript)
        for biotype in biotypes
    ]

    # Lay the genes out along the chromosomes, never overlapping.
    chromosomes: dict[str, int] = {}
    placements: list[tuple[str, int]] = []  # (chromosome, leftmost base) per gene
    per_chromosome = [
        n_genes // n_chromosomes + (1 if c < n_genes % n_chromosomes else 0)
        for c in range(n_chromosomes)
    ]
    gene_index = 0
    for c, count in enumerate(per_chromosome):
        name = str(c + 1)
        cursor = rng.randint(500, 2000)
        for _ in range(count):
            placements.append((name, cursor + 1))
            cursor += plans[gene_index].span + rng.randint(150, 1500)
            gene_index += 1
        chromosomes[name] = cursor + rng.randint(500, 2000)
    sequences = {
        name: rng.randbytes(length).translate(_ACGT_TABLE) for name, length in chromosomes.items()
    }

    genes: dict[str, DemoGene] = {}
    transcripts: dict[str, DemoTranscript] = {}
    transcript_sequences: dict[str, str] = {}
    transcript_number = 0
    exon_number = 0
    for number, (plan, (chrom, left)) in enumerate(zip(plans, placements, strict=True), start=1):
        gene_id = f"{id_prefix}G{number:011d}"
        gene_name = f"{id_prefix.lower()}{number}"
        exon_coords: list[tuple[int, int]] = []
        exon_ids: list[str] = []
        position = left
        for k, length in enumerate(plan.exon_lengths):
            exon_number += 1
            exon_ids.append(f"{id_prefix}E{exon_number:011d}")
            exon_coords.append((position, position + length - 1))
            position += length
            if k < len(plan.intron_lengths):
                position += plan.intron_lengths[k]
        chrom_seq = sequences[chrom]
        gene_transcripts: list[DemoTranscript] = []
        for t_index, exon_indexes in enumerate(plan.transcript_exons):
            transcript_number += 1
            transcript_id = f"{id_prefix}T{transcript_number:011d}"
            indexes = list(exon_indexes)
            if plan.strand == "-":
                indexes.reverse()
            ordered = [exon_coords[i] for i in indexes]
            spliced = b"".join(chrom_seq[s - 1 : e] for s, e in sorted(ordered))
            sequence = spliced.decode("ascii")
            if plan.strand == "-":
                sequence = reverse_complement(sequence)
            coding = None
            if plan.biotype == "protein_coding":
                length = len(sequence)
                utr5 = rng.randint(0, min(60, length // 5))
                utr3 = rng.randint(0, min(90, length // 5))
                coding_length = (length - utr5 - utr3) // 3 * 3
                if coding_length >= 6:
                    coding = (utr5, utr5 + coding_length)
            transcript = DemoTranscript(
                transcript_id=transcript_id,
                gene_id=gene_id,
                transcript_name=f"{gene_name}-{201 + t_index}",
                biotype=plan.biotype,
                chromosome=chrom,
                strand=plan.strand,
                exons=tuple(ordered),
                exon_ids=tuple(exon_ids[i] for i in indexes),
                coding=coding,
                protein_id=(
                    f"{id_prefix}P{transcript_number:011d}" if coding is not None else None
                ),
            )
            gene_transcripts.append(transcript)
            transcripts[transcript_id] = transcript
            transcript_sequences[transcript_id] = sequence
        genes[gene_id] = DemoGene(
            gene_id=gene_id,
            gene_name=gene_name,
            biotype=plan.biotype,
            chromosome=chrom,
            strand=plan.strand,
            start=min(t.start for t in gene_transcripts),
            end=max(t.end for t in gene_transcripts),
            transcript_ids=tuple(t.transcript_id for t in gene_transcripts),
        )

    genome_fasta = write_genome_fasta(out_dir / genome_name, sequences, assembly)
    gtf = write_gtf(
        out_dir / gtf_name,
        genes,
        transcripts,
        assembly=assembly,
        assembly_accession=assembly_accession,
    )

    return DemoOrganism(
        species=species,
        scientific_name=scientific_name,
        display_name=display_name,
        assembly=assembly,
        assembly_accession=assembly_accession,
        taxonomy_id=taxonomy_id,
        genebuild=genebuild,
        seed=seed,
        directory=out_dir,
        genome_fasta=genome_fasta,
        gtf=gtf,
        chromosomes=dict(chromosomes),
        genes=genes,
        transcripts=transcripts,
        transcript_sequences=transcript_sequences,
    )
