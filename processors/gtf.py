"""Cleaning an Ensembl GTF for RSEM in one streaming pass: pseudogenes removed,
malformed lines skipped and counted, and the transcript-to-gene map collected.

- Pseudogenes: a gene whose `gene_biotype`, or a transcript whose
  `transcript_biotype`, contains "pseudogene" is dropped with all its lines.
  One pass is enough because Ensembl puts a gene's line before its
  transcripts' lines and the biotypes on every line.
- The clean GTF holds the comment and exon lines only: the exons are all RSEM
  reads (its output is byte for byte the same) and a third of the file.
- A malformed line (not 9 tab-separated fields; an exon line without sound
  coordinates, a strand, a `gene_id` and a `transcript_id`) is skipped and
  counted, and the first few line numbers are kept for the log.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from processors.raw_inputs import open_input, read_lines

MALFORMED_EXAMPLES = 5

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


def clean_gtf_file(source: Path, target: Path) -> AnnotationCleaning:
    """`clean_gtf` from `source` (gunzipped when its name ends in .gz) to `target`."""
    with open(target, "wb") as out, open_input(source) as stream:
        return clean_gtf(read_lines(stream), out)


def write_gene_map(transcript_to_gene: dict[bytes, bytes], target: Path) -> None:
    """`gene_id<TAB>transcript_id` per line, as RSEM's --transcript-to-gene-map reads it."""
    with open(target, "wb") as out:
        for transcript_id, gene_id in transcript_to_gene.items():
            out.write(gene_id + b"\t" + transcript_id + b"\n")
