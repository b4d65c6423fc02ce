"""FASTA reading and writing for the demo organism, and DNA reverse complements."""

from __future__ import annotations

import gzip
from collections.abc import Mapping
from pathlib import Path

__all__ = ["FASTA_LINE_WIDTH", "read_fasta", "reverse_complement", "write_genome_fasta"]

#: Bases per sequence line, as in Ensembl's FASTA files.
FASTA_LINE_WIDTH = 60
_COMPLEMENT = bytes.maketrans(b"ACGTNacgtn", b"TGCANtgcan")


def reverse_complement(sequence: str) -> str:
    """The reverse complement of a DNA sequence (A/C/G/T/N, either case)."""
    return sequence.encode("ascii").translate(_COMPLEMENT)[::-1].decode("ascii")


def read_fasta(path: str | Path) -> dict[str, str]:
    """Read a (possibly gzipped) FASTA file into ``{first word of header: sequence}``."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    sequences: dict[str, list[str]] = {}
    current: list[str] | None = None
    with opener(path, "rt", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(">"):
                current = sequences.setdefault(line[1:].split()[0], [])
            elif current is not None:
                current.append(line.strip())
    return {name: "".join(parts) for name, parts in sequences.items()}


def write_genome_fasta(path: Path, sequences: Mapping[str, bytes], assembly: str) -> Path:
    """Write chromosomes with Ensembl's ``dna:chromosome`` headers, 60 bases a line."""
    with open(path, "wb") as out:
        for name, sequence in sequences.items():
            length = len(sequence)
            out.write(
                f">{name} dna:chromosome chromosome:{assembly}:{name}:1:{length}:1 REF\n".encode()
            )
            out.write(
                b"\n".join(
                    sequence[i : i + FASTA_LINE_WIDTH] for i in range(0, length, FASTA_LINE_WIDTH)
                )
            )
            out.write(b"\n")
    return path
