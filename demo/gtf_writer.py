"""Ensembl-shaped GTF for the demo organism: gene, transcript, exon, CDS, codon and UTR lines."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from demo.organism import DemoGene, DemoTranscript

__all__ = ["write_gtf"]


def write_gtf(
    path: Path,
    genes: Mapping[str, DemoGene],
    transcripts: Mapping[str, DemoTranscript],
    *,
    assembly: str,
    assembly_accession: str,
) -> Path:
    """Write ``genes`` (and their transcripts) as a GTF with Ensembl's ``#!`` header lines."""
    with open(path, "w", encoding="ascii", newline="\n") as out:
        out.write(f"#!genome-build {assembly}\n")
        out.write(f"#!genome-version {assembly}\n")
        out.write("#!genome-date 2025-01\n")
        out.write(f"#!genome-build-accession {assembly_accession}\n")
        out.write("#!genebuild-last-updated 2025-01\n")
        for gene in genes.values():
            out.write(
                _gtf_line(
                    gene.chromosome,
                    "gene",
                    gene.start,
                    gene.end,
                    gene.strand,
                    ".",
                    _attributes(
                        [
                            ("gene_id", gene.gene_id),
                            ("gene_version", "1"),
                            ("gene_name", gene.gene_name),
                            ("gene_source", "ensembl"),
                            ("gene_biotype", gene.biotype),
                        ]
                    ),
                )
            )
            for index, transcript_id in enumerate(gene.transcript_ids):
                out.writelines(_transcript_gtf_lines(gene, transcripts[transcript_id], index))
    return path


def _transcript_interval_to_genomic(
    exons: tuple[tuple[int, int], ...], strand: str, begin: int, end: int
) -> list[tuple[int, int, int]]:
    """Map transcript coordinates [begin, end) to ``(exon_index, start, end)`` on the genome."""
    pieces = []
    offset = 0
    for index, (exon_start, exon_end) in enumerate(exons):
        length = exon_end - exon_start + 1
        lo, hi = max(begin, offset), min(end, offset + length)
        if lo < hi:
            if strand == "+":
                pieces.append((index, exon_start + (lo - offset), exon_start + (hi - offset) - 1))
            else:
                pieces.append((index, exon_end - (hi - offset) + 1, exon_end - (lo - offset)))
        offset += length
    return pieces


def _attributes(pairs: list[tuple[str, str]]) -> str:
    return " ".join(f'{key} "{value}";' for key, value in pairs)


def _gtf_line(
    chromosome: str, feature: str, start: int, end: int, strand: str, frame: str, attrs: str
) -> str:
    return f"{chromosome}\tensembl\t{feature}\t{start}\t{end}\t.\t{strand}\t{frame}\t{attrs}\n"


def _transcript_gtf_lines(gene: DemoGene, transcript: DemoTranscript, index: int) -> Iterator[str]:
    gene_part = [("gene_id", gene.gene_id), ("gene_version", "1")]
    tx_part = [("transcript_id", transcript.transcript_id), ("transcript_version", "1")]
    names = [
        ("gene_name", gene.gene_name),
        ("gene_source", "ensembl"),
        ("gene_biotype", gene.biotype),
        ("transcript_name", transcript.transcript_name),
        ("transcript_source", "ensembl"),
        ("transcript_biotype", transcript.biotype),
    ]
    tags = [("tag", "basic")] + ([("tag", "Ensembl_canonical")] if index == 0 else [])
    chrom, strand = transcript.chromosome, transcript.strand
    yield _gtf_line(
        chrom,
        "transcript",
        transcript.start,
        transcript.end,
        strand,
        ".",
        _attributes(gene_part + tx_part + names + tags),
    )
    cds_pieces: dict[int, list[tuple[int, int, int]]] = {}
    start_pieces: dict[int, list[tuple[int, int]]] = {}
    stop_pieces: dict[int, list[tuple[int, int]]] = {}
    utr5: list[tuple[int, int, int]] = []
    utr3: list[tuple[int, int, int]] = []
    protein_id = transcript.protein_id or ""
    if transcript.coding is not None:
        c0, c1 = transcript.coding
        done = 0
        for exon_index, start, end in _transcript_interval_to_genomic(
            transcript.exons, strand, c0, c1 - 3
        ):
            frame = (3 - done % 3) % 3
            cds_pieces.setdefault(exon_index, []).append((start, end, frame))
            done += end - start + 1
        for exon_index, start, end in _transcript_interval_to_genomic(
            transcript.exons, strand, c0, c0 + 3
        ):
            start_pieces.setdefault(exon_index, []).append((start, end))
        for exon_index, start, end in _transcript_interval_to_genomic(
            transcript.exons, strand, c1 - 3, c1
        ):
            stop_pieces.setdefault(exon_index, []).append((start, end))
        utr5 = _transcript_interval_to_genomic(transcript.exons, strand, 0, c0)
        utr3 = _transcript_interval_to_genomic(transcript.exons, strand, c1, transcript.length)
    for number, (start, end) in enumerate(transcript.exons, start=1):
        exon_number = [("exon_number", str(number))]
        exon_ids = [("exon_id", transcript.exon_ids[number - 1]), ("exon_version", "1")]
        yield _gtf_line(
            chrom,
            "exon",
            start,
            end,
            strand,
            ".",
            _attributes(gene_part + tx_part + exon_number + names + exon_ids + tags),
        )
        for piece_start, piece_end, frame in cds_pieces.get(number - 1, []):
            protein = [("protein_id", protein_id), ("protein_version", "1")]
            yield _gtf_line(
                chrom,
                "CDS",
                piece_start,
                piece_end,
                strand,
                str(frame),
                _attributes(gene_part + tx_part + exon_number + names + protein + tags),
            )
        for feature, pieces in (("start_codon", start_pieces), ("stop_codon", stop_pieces)):
            for piece_start, piece_end in pieces.get(number - 1, []):
                yield _gtf_line(
                    chrom,
                    feature,
                    piece_start,
                    piece_end,
                    strand,
                    "0",
                    _attributes(gene_part + tx_part + exon_number + names + tags),
                )
    for feature, pieces in (("five_prime_utr", utr5), ("three_prime_utr", utr3)):
        for _, piece_start, piece_end in pieces:
            yield _gtf_line(
                chrom,
                feature,
                piece_start,
                piece_end,
                strand,
                ".",
                _attributes(gene_part + tx_part + names + tags),
            )
