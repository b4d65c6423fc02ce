"""The REST API: read-only, filtered, paged."""

import pytest

pytestmark = pytest.mark.django_db


def test_the_root_lists_every_endpoint(client):
    body = client.get("/api/").json()
    # By their URL names, with each list's description.
    assert set(body["endpoints"]) >= {
        "transcriptome-indices", "jobs/processor", "runs", "datasets", "stats", "schema",
    }  # fmt: skip
    assert body["endpoints"]["jobs/processor"].endswith("/api/jobs/processor/")
    assert body["about"]["samples"].startswith("RNA-seq samples")
    for url in body["endpoints"].values():
        assert client.get(url).status_code == 200, url


def test_transcriptome_indices_with_file_and_provenance(client, history):
    body = client.get("/api/transcriptome-indices/", {"organism": "refinery demonstrans"}).json()
    assert body["count"] == 1
    [index] = body["results"]
    assert index["organism"]["taxonomy_id"] == 1 and index["k"] == 31
    assert index["file"]["filename"] == "index.tar.gz"
    assert (index["file"]["size"], index["file"]["sha256"]) == (1, "0" * 64)
    assert index["file"]["location"].endswith("processor/x/index.tar.gz")
    assert index["file"]["provenance"]["processor_name"] == "transcriptome_index_long"
    assert client.get("/api/transcriptome-indices/", {"length": "short"}).json()["count"] == 0


def test_jobs_filter_by_state_and_show_the_retry_chain(client, history):
    failed = client.get("/api/jobs/processor/", {"state": "failed"}).json()["results"]
    assert [j["id"] for j in failed] == [history["failed"].pk]
    assert failed[0]["failure_reason"] == "salmon exited with code 1: out of disk"
    retry = client.get(f"/api/jobs/processor/{history['retry'].pk}/").json()
    assert retry["retried_job"] == history["failed"].pk and retry["state"] == "succeeded"


def test_stats_aggregate_jobs_and_batches(client, history):
    stats = client.get("/api/stats/").json()
    assert stats["jobs"]["processor"] == {"failed": 1, "succeeded": 1}
    assert stats["transcriptome_indices"] == 1 and stats["organisms"] == 1


def test_the_api_is_read_only(client, history):
    assert client.post("/api/batches/", {"accession": "x"}).status_code == 405
    assert client.delete(f"/api/jobs/processor/{history['failed'].pk}/").status_code == 405


def test_a_bad_filter_is_a_clear_error(client, history):
    response = client.get("/api/jobs/processor/", {"since": "last tuesday"})
    assert response.status_code == 400
    assert "not a date or time" in response.json()["since"]


def test_lists_are_paged(client, history):
    body = client.get("/api/jobs/processor/", {"limit": 1}).json()
    assert body["count"] == 2 and len(body["results"]) == 1 and body["next"]
