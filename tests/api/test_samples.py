"""/api/samples/ and /api/experiments/: filtered by organism, study, platform and
quality, each sample's runs with their quantification's status and metrics."""

import pytest

from common.models import Batch, Experiment, Organism, ProcessorJob, Quantification, Sample
from tests.ena_fixtures import with_index

pytestmark = pytest.mark.django_db


@pytest.fixture
def samples(refinery_dirs):
    index = with_index()
    human = Organism.objects.create(scientific_name="Homo sapiens", taxonomy_id=9606)
    study = Experiment.objects.create(
        source="ena", accession="PRJNA1", alternate_accession="SRP1", title="one"
    )
    other = Experiment.objects.create(source="ena", accession="PRJNA2", title="two")
    rows = {}
    for name, organism, experiment, platform, rate in (
        ("SAMN1", index.organism, study, "ILLUMINA", 0.95),
        ("SAMN2", index.organism, study, "ILLUMINA", 0.05),
        ("SAMN3", human, other, "ION_TORRENT", None),
    ):
        sample = Sample.objects.create(
            source="ena", accession=name, organism=organism, platform=platform, title=name
        )
        sample.experiments.add(experiment)
        batch = Batch.objects.create(
            source="ena", accession=f"SRR{name[-1]}", organism=organism,
            pipeline_required="salmon_quant",
        )  # fmt: skip
        sample.batches.add(batch)
        job = ProcessorJob.objects.create(pipeline="salmon_quant")
        job.batches.add(batch)
        if rate is not None:
            Quantification.of_genes(
                batch=batch, processor_job=job, transcriptome_index=index, mapping_rate=rate,
                library_type="U", reads_processed=1000, low_quality=rate < 0.2,
                gene_ids=["g1", "g2"], counts=[1.0, 2.0], tpm=[3e5, 7e5],
            ).save()  # fmt: skip
        rows[name] = sample
    return rows


def accessions(client, path, **query) -> list[str]:
    response = client.get(path, query)
    assert response.status_code == 200, response.json()
    return [row["accession"] for row in response.json()["results"]]


def test_samples_filter_by_organism_study_platform_and_quality(client, samples):
    assert accessions(client, "/api/samples/") == ["SAMN1", "SAMN2", "SAMN3"]
    assert accessions(client, "/api/samples/", organism="refinery demonstrans") == [
        "SAMN1", "SAMN2",
    ]  # fmt: skip
    assert accessions(client, "/api/samples/", study="SRP1") == ["SAMN1", "SAMN2"]
    assert accessions(client, "/api/samples/", study="PRJNA2") == ["SAMN3"]
    assert accessions(client, "/api/samples/", platform="ion_torrent") == ["SAMN3"]
    assert accessions(client, "/api/samples/", quality="good") == ["SAMN1"]
    assert accessions(client, "/api/samples/", quality="low") == ["SAMN2"]
    assert accessions(client, "/api/samples/", quality="unquantified") == ["SAMN3"]


def test_a_sample_shows_its_runs_quantification(client, samples):
    body = client.get(f"/api/samples/{samples['SAMN2'].pk}/").json()
    assert body["organism"] == "Refinery demonstrans" and body["studies"] == ["PRJNA1"]
    [run] = body["runs"]
    assert run["accession"] == "SRR2"
    assert run["quantification"]["status"] == "low quality"
    assert run["quantification"]["mapping_rate"] == 0.05
    assert run["quantification"]["genes"] == 2 and "tpm" not in run["quantification"]
    waiting = client.get(f"/api/samples/{samples['SAMN3'].pk}/").json()["runs"][0]
    assert waiting["quantification"] == {"status": "created"}


def test_experiments_filter_and_list_their_samples(client, samples):
    body = client.get("/api/experiments/", {"organism": "homo sapiens"}).json()
    assert [(e["accession"], e["samples"]) for e in body["results"]] == [("PRJNA2", ["SAMN3"])]
    assert accessions(client, "/api/experiments/", study="srp1") == ["PRJNA1"]
    assert accessions(client, "/api/experiments/", platform="ILLUMINA") == ["PRJNA1"]
    assert accessions(client, "/api/experiments/", quality="low") == ["PRJNA1"]


def test_a_bad_quality_is_a_400_naming_it(client, samples):
    response = client.get("/api/samples/", {"quality": "great"})
    assert response.status_code == 400
    assert response.json() == {"quality": "not one of good, low, unquantified: 'great'"}
