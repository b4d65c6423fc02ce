"""An ENA-shaped server on loopback for the ENA surveyor and fastq downloader tests:
a study of four runs of the demo organism (two single-end, two paired), FASTQ
simulated from its transcripts."""

from __future__ import annotations

import gzip

import pytest
from django.utils import timezone

from common.models import (
    Batch,
    ComputedFile,
    Organism,
    ProcessorJob,
    Provenance,
    TranscriptomeIndex,
)
from demo.ena_server import EnaServer, ServedRun
from demo.ensembl_server import ServedGenome
from demo.organism import DEMO_SCIENTIFIC_NAME, DEMO_TAXONOMY_ID, generate_organism
from demo.reads import simulate_reads
from tests.ensembl_fixtures import FUNGI, serve

STUDY = "PRJNA900001"


def with_index(scientific_name: str = DEMO_SCIENTIFIC_NAME) -> TranscriptomeIndex:
    """A transcriptome index row for an organism (its file is not needed here)."""
    organism = Organism.get_or_create_by_name(scientific_name, DEMO_TAXONOMY_ID)
    batch = Batch.objects.create(
        source="ensembl", accession=f"{scientific_name}@114", variant="31", organism=organism,
        pipeline_required="transcriptome_index_long",
    )  # fmt: skip
    job = ProcessorJob.objects.create(pipeline="transcriptome_index_long")
    provenance = Provenance.objects.create(
        processor_job=job, processor_name="transcriptome_index_long", processor_version="1",
        started_at=timezone.now(), ended_at=timezone.now(),
    )  # fmt: skip
    computed = ComputedFile.objects.create(
        key=f"processor/job-{job.pk}/index.tar.gz", filename="index.tar.gz", format="tar.gz",
        size=1, sha256="0" * 64, processor_job=job, provenance=provenance,
    )  # fmt: skip
    return TranscriptomeIndex.objects.create(
        organism=organism, batch=batch, length="long", k=31, source_release="114",
        assembly="Demo1.0", salmon_version="1.10.1", computed_file=computed,
    )  # fmt: skip


def study_runs(tmp_path, n_reads: int = 200, organism=None) -> list[ServedRun]:
    organism = organism or generate_organism(tmp_path / "organism", n_genes=12, seed=3)
    coding = organism.protein_coding_transcript_ids()
    abundances = {tid: 2.0**i for i, tid in enumerate(coding[:6])}
    runs = []
    for number in range(1, 5):
        paired = number > 2
        names = ["_1", "_2"] if paired else [""]
        files = []
        for mate, suffix in enumerate(names):
            path = simulate_reads(
                organism, abundances, n_reads, seed=number * 10 + mate, gzipped=True,
                out_path=tmp_path / "reads" / f"SRR90000{number}{suffix}.fastq.gz",
            )  # fmt: skip
            files.append((path.name, path.read_bytes()))
        run = ServedRun(
            run=f"SRR90000{number}", study=STUDY, secondary_study="SRP900001",
            sample=f"SAMN9000000{number}", experiment=f"SRX90000{number}",
            scientific_name=DEMO_SCIENTIFIC_NAME, tax_id=DEMO_TAXONOMY_ID, files=files,
            layout="PAIRED" if paired else "SINGLE", read_count=n_reads,
        )  # fmt: skip
        runs.append(run)
    return runs


def gzipped(text: str) -> bytes:
    return gzip.compress(text.encode())


@pytest.fixture
def ena(tmp_path, settings, refinery_dirs):
    """ENA serving the study, and Ensembl's REST API knowing its organism (in
    EnsemblFungi), for the survey's look-up of the division to index it from."""
    organism = generate_organism(tmp_path / "organism", n_genes=12, seed=3)
    ensembl = serve(tmp_path, settings, [ServedGenome.from_organism(organism, division=FUNGI)])
    server = EnaServer(study_runs(tmp_path, organism=organism)).start()
    settings.ENA_PORTAL_URL = server.portal_url
    settings.ENA_FASTQ_URL = server.fastq_url
    settings.REFINERY_HTTP_TIMEOUT_S = 2
    yield server
    server.stop()
    ensembl.stop()
