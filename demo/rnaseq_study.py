"""A small RNA-seq study of the demo organism, in ENA's shapes: reads simulated
from known transcript abundances, for the demo's second part and the tests."""

from __future__ import annotations

from pathlib import Path

from demo.ena_server import ServedRun
from demo.organism import DEMO_SCIENTIFIC_NAME, DEMO_TAXONOMY_ID, DemoOrganism
from demo.reads import simulate_paired_reads, simulate_reads

DEMO_STUDY = "PRJNA900001"


def expressed_transcripts(organism: DemoOrganism, count: int = 8) -> dict[str, float]:
    """`count` protein-coding transcripts, one per gene and long enough to map
    well, at abundances doubling from one to the next."""
    chosen = [
        gene.transcript_ids[0]
        for gene in organism.genes.values()
        if len(gene.transcript_ids) == 1
        and organism.transcripts[gene.transcript_ids[0]].biotype == "protein_coding"
        and len(organism.transcript_sequences[gene.transcript_ids[0]]) >= 300
    ][:count]
    return {transcript: 2.0**i for i, transcript in enumerate(chosen)}


def study_runs(
    organism: DemoOrganism, folder: Path, reads: int = 4000, study: str = DEMO_STUDY
) -> list[ServedRun]:
    """Four runs of one study: two single-end, two paired-end, one sample each."""
    abundances = expressed_transcripts(organism)
    folder.mkdir(parents=True, exist_ok=True)
    runs = []
    for number in range(1, 5):
        run = f"SRR90000{number}"
        if number <= 2:
            paths = [
                simulate_reads(organism, abundances, reads, seed=number, gzipped=True,
                               out_path=folder / f"{run}.fastq.gz")
            ]  # fmt: skip
        else:
            paths = list(
                simulate_paired_reads(
                    organism, abundances, reads // 2, seed=number,
                    out_paths=(folder / f"{run}_1.fastq.gz", folder / f"{run}_2.fastq.gz"),
                )
            )  # fmt: skip
        runs.append(
            ServedRun(
                run=run,
                study=study,
                sample=f"SAMN9000000{number}",
                experiment=f"SRX90000{number}",
                scientific_name=DEMO_SCIENTIFIC_NAME,
                tax_id=DEMO_TAXONOMY_ID,
                files=[(p.name, p.read_bytes()) for p in paths],
                layout="PAIRED" if number > 2 else "SINGLE",
                read_count=reads,
            )
        )
    return runs
