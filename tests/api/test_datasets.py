"""/api/datasets/: asked for by an authenticated user, built by the
dataset_matrix pipeline from the samples' quantifications, read by whoever
holds its id, and downloaded as gzip TSV or Parquet that match the per-sample
results exactly."""

from __future__ import annotations

import gzip
import io

import pyarrow.parquet as pq
import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from common.models import (
    Batch,
    Dataset,
    Experiment,
    Organism,
    ProcessorJob,
    Quantification,
    Sample,
)
from runner.lifecycle import execute_job, start_here
from tests.ena_fixtures import with_index

pytestmark = pytest.mark.django_db

GENES = ["ENSG1", "ENSG2", "ENSG3"]


@pytest.fixture
def study(refinery_dirs):
    """Three quantified samples of one organism (SAMN2 in two runs), one sample
    of another organism, and one not quantified yet."""
    index = with_index()
    study = Experiment.objects.create(source="ena", accession="PRJNA1", title="one")
    runs = {
        "SAMN1": [([1.5, 0.0, 7.25], [1e5, 0.0, 9e5])],
        "SAMN2": [([2.0, 3.0, 4.0], [2e5, 3e5, 5e5]), ([1.0, 1.0, 1.0], [4e5, 4e5, 2e5])],
        "SAMN3": [([0.1, 0.2, 0.3], [1.0 / 3, 2e5, 8e5 - 1.0 / 3])],
    }
    number = 0
    for accession, quantified in runs.items():
        sample = Sample.objects.create(source="ena", accession=accession, organism=index.organism)
        sample.experiments.add(study)
        for counts, tpm in quantified:
            number += 1
            batch = Batch.objects.create(
                source="ena", accession=f"SRR{number}", organism=index.organism,
                pipeline_required="salmon_quant",
            )  # fmt: skip
            sample.batches.add(batch)
            job = ProcessorJob.objects.create(pipeline="salmon_quant")
            Quantification.of_genes(
                batch=batch, processor_job=job, transcriptome_index=index, mapping_rate=0.9,
                library_type="U", reads_processed=1000, gene_ids=GENES, counts=counts, tpm=tpm,
            ).save()  # fmt: skip
    Sample.objects.create(source="ena", accession="SAMN9", organism=index.organism)
    human = Organism.objects.create(scientific_name="Homo sapiens", taxonomy_id=9606)
    Sample.objects.create(source="ena", accession="SAMH1", organism=human)
    return runs


@pytest.fixture
def user_client():
    user = get_user_model().objects.create_user("analyst", password="x")
    token = Token.objects.create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def build(dataset_id: str) -> ProcessorJob:
    """Run the dataset's processor job here, as a worker would."""
    job = ProcessorJob.objects.get(batches__dataset__id=dataset_id)
    assert start_here(job)
    assert execute_job(job), job.failure_reason
    return job


def read_tsv(client, url: str) -> dict[str, dict[str, float | None]]:
    response = client.get(url)
    assert response.status_code == 200, response
    body = b"".join(response.streaming_content)
    lines = gzip.decompress(body).decode().splitlines()
    header = lines[0].split("\t")
    assert header[0] == "gene_id"
    table = {}
    for line in lines[1:]:
        gene, *cells = line.split("\t")
        table[gene] = {s: (float(c) if c else None) for s, c in zip(header[1:], cells, strict=True)}
    return table


def test_anonymous_users_may_not_ask_for_a_dataset(study):
    response = APIClient().post("/api/datasets/", {"samples": ["SAMN1"]}, format="json")
    assert response.status_code == 401
    assert not Dataset.objects.exists()


def test_a_dataset_of_an_experiment_matches_the_per_sample_results(study, user_client):
    response = user_client.post(
        "/api/datasets/", {"experiments": ["PRJNA1"], "value": "counts"}, format="json"
    )
    # SAMN9 is in no experiment, so the study's samples are all quantified.
    assert response.status_code == 201, response.json()
    dataset_id = response.json()["id"]
    assert response["Location"].endswith(f"/api/datasets/{dataset_id}/")
    anonymous = APIClient()
    assert anonymous.get(f"/api/datasets/{dataset_id}/").json()["state"] == "queued"
    assert user_client.get(f"/api/datasets/{dataset_id}/download/").status_code == 409

    build(dataset_id)
    shown = anonymous.get(f"/api/datasets/{dataset_id}/").json()
    assert shown["state"] == "ready" and shown["genes"] == 3
    assert shown["samples"] == ["SAMN1", "SAMN2", "SAMN3"]
    tsv = next(f for f in shown["files"] if f["format"] == "tsv.gz")
    assert anonymous.get(tsv["url"]).status_code == 401, "downloads need a user"
    table = read_tsv(user_client, tsv["url"])
    for accession, runs in study.items():
        for row, gene in enumerate(GENES):
            expected = sum(counts[row] for counts, _ in runs)
            assert table[gene][accession] == expected, (gene, accession)

    parquet = user_client.get(f"/api/datasets/{dataset_id}/download/?file=parquet")
    frame = pq.read_table(io.BytesIO(b"".join(parquet.streaming_content))).to_pydict()
    assert frame["gene_id"] == GENES
    assert frame["SAMN2"] == [3.0, 4.0, 5.0]


def test_tpm_of_a_sample_in_two_runs_is_their_mean(study, user_client, monkeypatch):
    # One gene per gzip member: the file is several members, read as one stream.
    monkeypatch.setattr("processors.dataset_files.TSV_SLICE_ROWS", 1)
    response = user_client.post(
        "/api/datasets/", {"samples": ["SAMN2", "SAMN3"], "value": "tpm"}, format="json"
    )
    dataset_id = response.json()["id"]
    build(dataset_id)
    table = read_tsv(user_client, f"/api/datasets/{dataset_id}/download/?file=tsv")
    assert [table[g]["SAMN2"] for g in GENES] == [3e5, 3.5e5, 3.5e5]
    assert table["ENSG1"]["SAMN3"] == 1.0 / 3, "values read back exactly as stored"
    assert "SAMN1" not in table["ENSG1"]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"samples": ["SAMN1", "SAMH1"]}, "organism", "one organism"),
        ({"samples": ["SAMN1"], "organism": "Homo sapiens"}, "organism", "not Homo sapiens"),
        ({"samples": ["SAMN1", "SAMN9"]}, "samples", "not quantified yet"),
        ({"samples": ["SAMN1", "NOPE"]}, "non_field_errors", "NOPE"),
        ({}, "non_field_errors", "at least one"),
        ({"samples": ["SAMN1"], "value": "fpkm"}, "value", "not a valid choice"),
    ],
)
def test_a_dataset_that_cannot_be_built_is_a_400_saying_why(study, user_client, body, field, words):
    response = user_client.post("/api/datasets/", body, format="json")
    assert response.status_code == 400
    assert words in str(response.json()[field])
    assert not Dataset.objects.exists()


def test_an_unknown_or_malformed_id_is_a_404(study):
    client = APIClient()
    assert client.get("/api/datasets/not-a-uuid/").status_code == 404
    missing = "00000000-0000-4000-8000-000000000000"
    assert client.get(f"/api/datasets/{missing}/").status_code == 404


def test_asking_is_throttled(study, user_client, monkeypatch):
    from django.core.cache import cache
    from rest_framework.throttling import ScopedRateThrottle

    cache.clear()
    # DRF reads the rates into the class when it is imported.
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"datasets": "2/hour"})
    codes = [
        user_client.post("/api/datasets/", {"samples": ["SAMN1"]}, format="json").status_code
        for _ in range(3)
    ]
    assert codes == [201, 201, 429]
    cache.clear()


def test_a_sample_whose_quantification_went_away_fails_the_build_saying_which(study, user_client):
    response = user_client.post("/api/datasets/", {"samples": ["SAMN1"]}, format="json")
    dataset_id = response.json()["id"]
    Quantification.objects.filter(batch__samples__accession="SAMN1").delete()
    job = ProcessorJob.objects.get(batches__dataset__id=dataset_id)
    assert start_here(job)
    assert not execute_job(job)
    job.refresh_from_db()
    assert job.no_retry and "SAMN1" in job.failure_reason
    shown = APIClient().get(f"/api/datasets/{dataset_id}/").json()
    assert shown["state"] == "retrying" and "SAMN1" in shown["failure_reason"]


def test_a_user_lists_the_datasets_they_asked_for_and_nobody_elses(study, user_client):
    mine = user_client.post("/api/datasets/", {"samples": ["SAMN1"]}, format="json").json()["id"]
    other = APIClient()
    other.force_authenticate(get_user_model().objects.create_user("someone-else"))
    assert other.post("/api/datasets/", {"samples": ["SAMN2"]}, format="json").status_code == 201
    assert [d["id"] for d in user_client.get("/api/datasets/").json()] == [mine]
    assert APIClient().get("/api/datasets/").json() == []


def test_a_request_naming_too_many_or_overlong_accessions_is_a_400(study, user_client, settings):
    settings.REFINERY_DATASET_MAX_SAMPLES = 3
    body = {"samples": [f"SAMN{n}" for n in range(4)]}
    response = user_client.post("/api/datasets/", body, format="json")
    assert response.status_code == 400
    assert "at most 3 accessions" in str(response.json())
    huge = user_client.post("/api/datasets/", {"samples": ["S" * 65]}, format="json")
    assert huge.status_code == 400 and not Dataset.objects.exists()
