"""Simulated single-end FASTQ reads from a demo organism's transcripts.

:func:`simulate_reads` writes reads drawn from chosen transcripts at given relative
abundances, so that a test can check that ``salmon quant`` ranks them on top.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from demo.fasta import reverse_complement
from demo.gzip_files import write_gzipped

if TYPE_CHECKING:
    from demo.organism import DemoOrganism

__all__ = ["simulate_paired_reads", "simulate_reads"]


def _allocate(counts_for: Mapping[str, float], n_reads: int) -> dict[str, int]:
    total = float(sum(counts_for.values()))
    exact = {tid: n_reads * weight / total for tid, weight in counts_for.items()}
    counts = {tid: int(value) for tid, value in exact.items()}
    remainder = n_reads - sum(counts.values())
    by_fraction = sorted(exact, key=lambda tid: (-(exact[tid] - counts[tid]), tid))
    for tid in by_fraction[:remainder]:
        counts[tid] += 1
    return counts


def simulate_reads(
    organism: DemoOrganism,
    abundances: Mapping[str, float],
    n_reads: int,
    read_length: int = 75,
    seed: int = 0,
    *,
    out_path: str | Path | None = None,
    stranded: bool = False,
    gzipped: bool = False,
) -> Path:
    """Write ``n_reads`` single-end FASTQ reads drawn from the given transcripts.

    ``abundances`` maps transcript ids to relative abundances: each transcript gets a share of
    the reads proportional to its abundance (largest-remainder rounding, so the counts are
    exact and deterministic). Read starts are uniform along the transcript; reads carry no
    errors and quality ``I``. Unless ``stranded``, half the reads (at random) are
    reverse-complemented, as from an unstranded library. Read names are
    ``@demo_read_<n> <transcript id>``. Returns the path written (by default
    ``<organism dir>/reads_seed<seed>.fastq``, ``.fastq.gz`` when ``gzipped``).
    """
    if n_reads < 0:
        raise ValueError("n_reads must be >= 0")
    if not abundances:
        raise ValueError("abundances must name at least one transcript")
    for tid, weight in abundances.items():
        if tid not in organism.transcript_sequences:
            raise KeyError(f"unknown transcript {tid!r}")
        if weight < 0:
            raise ValueError(f"abundance of {tid} is negative")
        if weight > 0 and len(organism.transcript_sequences[tid]) < read_length:
            raise ValueError(
                f"transcript {tid} is shorter ({len(organism.transcript_sequences[tid])}) "
                f"than the read length {read_length}"
            )
    positive = {tid: w for tid, w in sorted(abundances.items()) if w > 0}
    if not positive:
        raise ValueError("at least one abundance must be positive")
    rng = random.Random(seed)
    counts = _allocate(positive, n_reads)
    order = [tid for tid in sorted(counts) for _ in range(counts[tid])]
    rng.shuffle(order)
    if out_path is None:
        suffix = ".fastq.gz" if gzipped else ".fastq"
        out_path = organism.directory / f"reads_seed{seed}{suffix}"
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    quality = "I" * read_length
    lines: list[str] = []
    for number, tid in enumerate(order, start=1):
        sequence = organism.transcript_sequences[tid]
        start = rng.randint(0, len(sequence) - read_length)
        read = sequence[start : start + read_length]
        if not stranded and rng.random() < 0.5:
            read = reverse_complement(read)
        lines.append(f"@demo_read_{number} {tid}\n{read}\n+\n{quality}\n")
    data = "".join(lines)
    if gzipped:
        write_gzipped(data, out_path)
    else:
        out_path.write_text(data, encoding="ascii")
    return out_path


def simulate_paired_reads(
    organism: DemoOrganism,
    abundances: Mapping[str, float],
    n_pairs: int,
    out_paths: tuple[str | Path, str | Path],
    read_length: int = 75,
    fragment_length: int = 200,
    seed: int = 0,
) -> tuple[Path, Path]:
    """Write ``n_pairs`` paired-end reads (gzipped ``_1``/``_2`` FASTQ) from fragments
    of the given transcripts, at their relative abundances (as :func:`simulate_reads`).
    Mate 1 reads the fragment's start, mate 2 the reverse complement of its end; half
    the fragments (at random) come from the other strand, as from an unstranded
    library. A transcript shorter than ``fragment_length`` gives fragments of its length."""
    positive = {tid: w for tid, w in sorted(abundances.items()) if w > 0}
    for tid in positive:
        if len(organism.transcript_sequences[tid]) < read_length:
            raise ValueError(f"transcript {tid} is shorter than the read length {read_length}")
    rng = random.Random(seed)
    counts = _allocate(positive, n_pairs)
    order = [tid for tid in sorted(counts) for _ in range(counts[tid])]
    rng.shuffle(order)
    quality = "I" * read_length
    mates: tuple[list[str], list[str]] = ([], [])
    for number, tid in enumerate(order, start=1):
        sequence = organism.transcript_sequences[tid]
        size = min(fragment_length, len(sequence))
        start = rng.randint(0, len(sequence) - size)
        fragment = sequence[start : start + size]
        if rng.random() < 0.5:
            fragment = reverse_complement(fragment)
        first, second = fragment[:read_length], reverse_complement(fragment[-read_length:])
        for mate, read in zip(mates, (first, second), strict=True):
            mate.append(f"@demo_pair_{number} {tid}\n{read}\n+\n{quality}\n")
    paths = (Path(out_paths[0]), Path(out_paths[1]))
    for path, lines in zip(paths, mates, strict=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        write_gzipped("".join(lines), path)
    return paths
