"""From ENA to gene-level expression: a study of four runs (two single-end, two
paired) of the demo organism, surveyed from the ENA stand-in, downloaded, and
quantified with the real salmon against an index built by the real index
pipeline; the genes' TPMs are checked against the simulated truth. On
PostgreSQL the storage is S3 (moto), on SQLite local folders."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from rest_framework.test import APIClient

from common.models import (
    Batch,
    DownloaderJob,
    JobState,
    ProcessorJob,
    Quantification,
    Sample,
    TranscriptomeIndex,
)
from common.storage import permanent_storage, temporary_storage
from demo.ena_server import EnaServer
from demo.gzip_files import gzip_file
from demo.organism import generate_organism
from demo.reads import simulate_reads
from demo.rnaseq_study import expressed_transcripts, study_runs
from tests.ena_fixtures import STUDY
from tests.processors.test_transcriptome_index import GENOME_NAME, GTF_NAME, run, stage_batches

pytestmark = pytest.mark.django_db(transaction=True)
N_READS = 4000


def spearman(xs: list[float], ys: list[float]) -> float:
    """Spearman's rank correlation (average ranks for ties), by hand."""

    def ranks(values: list[float]) -> list[float]:
        order = sorted(range(len(values)), key=lambda i: values[i])
        result = [0.0] * len(values)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
                j += 1
            for k in range(i, j + 1):
                result[order[k]] = (i + j) / 2 + 1
            i = j + 1
        return result

    rx, ry = ranks(xs), ranks(ys)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    var = (sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry)) ** 0.5
    return cov / var


@pytest.fixture
def world(tmp_path, settings, refinery_dirs, request):
    """Storage by database; the demo organism's long index built; ENA serving a study."""
    if connection.vendor == "postgresql":
        request.getfixturevalue("s3_storage")
    organism = generate_organism(tmp_path / "organism", n_genes=30, seed=7)
    inputs = tmp_path / "ensembl"
    inputs.mkdir()
    jobs = stage_batches(
        gzip_file(organism.genome_fasta, inputs / GENOME_NAME),
        gzip_file(organism.gtf, inputs / GTF_NAME),
        lengths=["long"],
    )
    assert run(jobs["long"]).state == JobState.SUCCEEDED
    abundances = expressed_transcripts(organism)
    assert len(abundances) == 8
    runs = study_runs(organism, tmp_path / "reads", reads=N_READS, study=STUDY)
    server = EnaServer(runs).start()
    settings.ENA_PORTAL_URL, settings.ENA_FASTQ_URL = server.portal_url, server.fastq_url
    yield organism, abundances, server
    server.stop()


def run_everything() -> None:
    call_command("survey", "ena", "--study", STUDY)
    for job in DownloaderJob.objects.filter(downloader_task="fastq"):
        assert run(job).state == JobState.SUCCEEDED, job.failure_reason
    for job in ProcessorJob.objects.filter(pipeline="salmon_quant"):
        assert run(job).state == JobState.SUCCEEDED, job.failure_reason


def test_a_study_is_quantified_and_the_genes_ranked_as_simulated(world):
    organism, abundances, _ = world
    run_everything()
    truth_by_gene = {
        organism.transcripts[tid].gene_id: weight / len(organism.transcript_sequences[tid])
        for tid, weight in abundances.items()
    }
    quantifications = Quantification.objects.select_related("batch").order_by("batch__accession")
    assert [q.batch.accession for q in quantifications] == [f"SRR90000{n}" for n in range(1, 5)]
    index = TranscriptomeIndex.objects.get()
    for quantification in quantifications:
        tpm = dict(zip(quantification.gene_ids, quantification.tpm, strict=True))
        genes = sorted(tpm)
        rho = spearman([tpm[g] for g in genes], [truth_by_gene.get(g, 0.0) for g in genes])
        assert rho >= 0.9, (quantification.batch.accession, rho)
        # The genes' counts rank them in the order their reads were drawn.
        counts = dict(zip(quantification.gene_ids, quantification.counts, strict=True))
        drawn = [organism.transcripts[tid].gene_id for tid in abundances]  # ascending
        assert sorted(drawn, key=counts.get) == drawn
        assert abs(sum(quantification.tpm) - 1e6) < 1
        assert quantification.mapping_rate > 0.9 and not quantification.low_quality
        paired = quantification.batch.metadata["layout"] == "PAIRED"
        assert quantification.library_type == ("IU" if paired else "U")
        assert quantification.reads_processed == N_READS // (2 if paired else 1)
        assert quantification.transcriptome_index == index

        provenance = quantification.processor_job.provenance
        [command] = provenance.commands
        assert command[:2] == ["salmon", "quant"] and "--validateMappings" in command
        assert ("-1" in command and "-2" in command) if paired else "-r" in command
        assert provenance.tools["salmon"] == "1.10.1"
        assert provenance.parameters["index_sha256"] == index.computed_file.sha256
        assert provenance.parameters["index_length"] == "long"
        assert all(len(i["sha256"]) == 64 for i in provenance.inputs)
        files = {f.filename: f for f in quantification.processor_job.computed_files.all()}
        assert set(files) == {
            "quant.sf", "lib_format_counts.json", "meta_info.json", "gene_quant.tsv"
        }  # fmt: skip
        with permanent_storage().open(files["gene_quant.tsv"].key) as handle:
            text = handle.read().decode()
        rows = list(csv.DictReader(io.StringIO(text), delimiter="\t"))
        assert [r["gene_id"] for r in rows] == quantification.gene_ids
    assert set(Batch.objects.filter(source="ena").values_list("status", flat=True)) == {"processed"}
    assert not list(temporary_storage().list("downloader/"))  # the FASTQs are no longer needed
    assert Sample.objects.count() == 4
    # One unpacked copy of the index served the four jobs, keyed by its SHA-256.
    cache = Path(settings.REFINERY_WORK_DIR) / "index-cache"
    assert [p.name for p in cache.iterdir()] == [index.computed_file.sha256]
    check_dataset_matches(quantifications)


def check_dataset_matches(quantifications) -> None:
    """The study's TPMs as a dataset, asked for and downloaded through the API
    (streamed from local folders; on S3 a redirect to a presigned URL), are the
    per-sample results exactly."""
    user = get_user_model().objects.create_user("analyst")
    client = APIClient()
    client.force_authenticate(user)
    asked = client.post("/api/datasets/", {"experiments": [STUDY], "value": "tpm"}, format="json")
    assert asked.status_code == 201, asked.json()
    job = ProcessorJob.objects.get(batches__dataset__id=asked.json()["id"])
    assert run(job).state == JobState.SUCCEEDED, job.failure_reason
    response = client.get(f"/api/datasets/{asked.json()['id']}/download/?file=tsv")
    if response.status_code == 302:  # S3: a presigned URL
        body = requests.get(response["Location"], timeout=30).content
        assert hashlib.sha256(body).hexdigest() == response["X-Checksum-SHA256"]
    else:
        assert response.status_code == 200
        body = b"".join(response.streaming_content)
    rows = list(csv.DictReader(io.StringIO(gzip.decompress(body).decode()), delimiter="\t"))
    for quantification in quantifications:
        [sample] = quantification.batch.samples.all()
        expected = dict(zip(quantification.gene_ids, quantification.tpm, strict=True))
        assert {r["gene_id"]: float(r[sample.accession]) for r in rows} == expected


def test_a_run_mapping_badly_is_low_quality_not_failed(world, tmp_path):
    organism, abundances, server = world
    stranger = generate_organism(tmp_path / "stranger", n_genes=30, seed=99)
    everything = {t: 1 for t in stranger.protein_coding_transcript_ids()}
    foreign = simulate_reads(
        stranger, everything, 900, seed=1, gzipped=True, out_path=tmp_path / "f.fastq.gz"
    )
    ours = simulate_reads(organism, abundances, 100, seed=2, gzipped=True,
                          out_path=tmp_path / "o.fastq.gz")  # fmt: skip
    server.runs = [server.runs[0]]
    server.runs[0].files = [("SRR900001.fastq.gz", ours.read_bytes() + foreign.read_bytes())]
    run_everything()
    quantification = Quantification.objects.get()
    assert quantification.low_quality and quantification.mapping_rate < 0.2
    assert quantification.processor_job.state == JobState.SUCCEEDED


def test_short_reads_without_a_short_index_fail_clearly(world):
    _, _, server = world
    server.runs = [server.runs[0]]
    server.runs[0].read_length = 50  # ENA's base_count says 50-base reads
    call_command("survey", "ena", "--run", "SRR900001")
    assert run(DownloaderJob.objects.get(downloader_task="fastq")).state == JobState.SUCCEEDED
    job = run(ProcessorJob.objects.get(pipeline="salmon_quant"))
    assert job.state == JobState.FAILED and job.no_retry
    assert job.failure_reason == (
        "no short transcriptome index for Refinery demonstrans: build it (survey its Ensembl "
        "division) and retry this job"
    )
