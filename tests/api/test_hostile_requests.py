"""The API attacked as a user would: bad filter values, huge pages, and a server
error that must not show the settings or the environment."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from common.models import Organism
from demo.services import free_port, wait_for_port

pytestmark = pytest.mark.django_db

MASK = "********"
HOSTILE_ENV = {
    "REFINERY_FOO_TOKEN": "foo-token-value-0123456789",
    "MY_WEBHOOK": "https://hooks.example.org/services/my-webhook-secret-path",
    "REFINERY_NOTIFY_WEBHOOK": "https://hooks.example.org/services/notify-webhook-secret-path",
}


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


def test_a_bad_filter_on_the_default_settings_is_a_400_and_no_settings_dump(
    start_manage, subprocess_env
):
    """The reported attack, on a real server started with the default settings
    (no REFINERY_DEBUG) and secrets in its environment, as `runserver` puts them
    into every request's META."""
    env = subprocess_env()
    env.pop("REFINERY_DEBUG", None)
    env.update(HOSTILE_ENV)
    database_password = env["DATABASE_URL"].partition("://")[2].partition("@")[0].partition(":")[2]
    port = free_port()
    server = start_manage("runserver", "--noreload", f"127.0.0.1:{port}", env=env)
    wait_for_port(port, timeout=60)

    status, content_type, body = get(f"http://127.0.0.1:{port}/api/results/?processor_job=abc")

    assert status == 400, body[:2000]
    assert content_type == "application/json"
    assert json.loads(body) == {"processor_job": "not a whole number: 'abc'"}
    for secret in [*HOSTILE_ENV.values(), *([database_password] if database_password else [])]:
        assert secret not in body
    server.kill()
    output = server.communicate(timeout=10)[0]
    assert "Traceback" not in output


# Each endpoint and filter the README lists, with a value it must refuse.
BAD_FILTERS = [
    ("/api/organisms/", "taxonomy_id", "abc", "not a whole number"),
    ("/api/organisms/", "taxonomy_id", "1.5", "not a whole number"),
    ("/api/organisms/", "name", "x\x00y", "Null characters are not allowed"),
    ("/api/transcriptome-indices/", "organism", "\x00", "Null characters are not allowed"),
    ("/api/transcriptome-indices/", "length", "medium", "not one of long, short"),
    ("/api/transcriptome-indices/", "release", "1\x00", "Null characters are not allowed"),
    ("/api/results/", "processor_job", "abc", "not a whole number"),
    ("/api/results/", "processor_job", "1.5", "not a whole number"),
    ("/api/results/", "format", "tar\x00", "Null characters are not allowed"),
    ("/api/batches/", "source", "nowhere", "not one of ensembl,"),
    ("/api/batches/", "status", "sideways", "not one of "),
    ("/api/batches/", "accession", "\x00", "Null characters are not allowed"),
    ("/api/batches/", "pipeline", "nope", "not one of "),
    ("/api/jobs/survey/", "state", "exploded", "not one of created, queued,"),
    ("/api/jobs/survey/", "source", "nowhere", "not one of ensembl,"),
    ("/api/jobs/survey/", "since", "2024-13-45", "not a date or time"),
    ("/api/jobs/downloader/", "state", "FAILED", "not one of "),
    ("/api/jobs/downloader/", "task", "teleport", "not one of "),
    ("/api/jobs/downloader/", "since", "yesterday", "not a date or time"),
    ("/api/jobs/processor/", "state", "x\x00", "not one of "),
    ("/api/jobs/processor/", "pipeline", "nope", "not one of "),
    ("/api/jobs/processor/", "since", "2024-02-30", "not a date or time"),
    ("/api/jobs/processor/", "limit", "many", "not a whole number"),
    ("/api/jobs/processor/", "limit", "0", "at least 1"),
    ("/api/jobs/processor/", "offset", "-1", "at least 0"),
]


@pytest.mark.parametrize(("url", "name", "value", "message"), BAD_FILTERS)
def test_every_bad_filter_value_is_a_400_naming_the_filter(
    client, history, settings, url, name, value, message
):
    settings.DEBUG = True  # the worst case: even then, no debug page
    client.raise_request_exception = False
    response = client.get(url, {name: value})
    assert response.status_code == 400, response.content[:500]
    body = response.json()
    assert list(body) == [name]
    assert body[name].startswith(message), body
    assert body[name].endswith(f": {value!r}")


# Each documented filter with a value that finds the history's rows, and one that does not.
GOOD_FILTERS = [
    ("/api/organisms/", "name", "REFINERY DEMONSTRANS", "nobody", 1),
    ("/api/organisms/", "taxonomy_id", "1", "2", 1),
    ("/api/transcriptome-indices/", "organism", "refinery demonstrans", "nobody", 1),
    ("/api/transcriptome-indices/", "length", "long", "short", 1),
    ("/api/transcriptome-indices/", "release", "114", "113", 1),
    ("/api/results/", "format", "tar.gz", "fasta", 1),
    ("/api/batches/", "source", "ensembl", "local_files", 1),
    ("/api/batches/", "status", "new", "processed", 1),
    ("/api/batches/", "accession", "refinery_demonstrans", "other", 1),
    ("/api/batches/", "pipeline", "transcriptome_index_long", "file_summary", 1),
    ("/api/jobs/survey/", "state", "created", "failed", 1),
    ("/api/jobs/survey/", "source", "ensembl", "local_files", 1),
    ("/api/jobs/survey/", "since", "2000-01-01", "2999-01-01", 1),
    ("/api/jobs/downloader/", "task", "transcriptome", "files", 1),
    ("/api/jobs/downloader/", "since", "2000-01-01T00:00:00Z", "2999-01-01T00:00:00", 1),
    ("/api/jobs/processor/", "state", "failed", "running", 1),
    ("/api/jobs/processor/", "pipeline", "transcriptome_index_long", "smoke_test", 2),
    ("/api/jobs/processor/", "since", "2000-01-01T00:00:00+02:00", "2999-01-01", 2),
]


@pytest.mark.parametrize(("url", "name", "found", "not_found", "count"), GOOD_FILTERS)
def test_every_documented_filter_still_filters(client, history, url, name, found, not_found, count):
    assert client.get(url, {name: found}).json()["count"] == count
    assert client.get(url, {name: not_found}).json()["count"] == 0
    assert client.get(url, {name: ""}).json()["count"] == client.get(url).json()["count"]


def test_results_filter_by_processor_job(client, history):
    retry = history["retry"].pk
    assert client.get("/api/results/", {"processor_job": retry}).json()["count"] == 1
    assert client.get("/api/results/", {"processor_job": history["failed"].pk}).json() == {
        "count": 0, "next": None, "previous": None, "results": [],
    }  # fmt: skip
    # A number no id can be is no match, not a database error.
    huge = client.get("/api/results/", {"processor_job": "9" * 30})
    assert huge.status_code == 200 and huge.json()["count"] == 0


def test_a_huge_limit_gets_at_most_the_maximum_page(client, db):
    Organism.objects.bulk_create(
        Organism(scientific_name=f"Species {n:05}", taxonomy_id=n) for n in range(1005)
    )
    body = client.get("/api/organisms/", {"limit": 100000000}).json()
    assert body["count"] == 1005
    assert len(body["results"]) == 1000
    assert "limit=1000" in body["next"] and "offset=1000" in body["next"]
    assert len(client.get("/api/organisms/").json()["results"]) == 100  # the default page


def test_the_maximum_page_size_is_a_setting(client, db, settings):
    settings.REFINERY_API_MAX_PAGE_SIZE = 2
    Organism.objects.bulk_create(Organism(scientific_name=f"S{n}") for n in range(5))
    assert len(client.get("/api/organisms/", {"limit": 100000000}).json()["results"]) == 2
    assert len(client.get("/api/organisms/").json()["results"]) == 2


def test_an_offset_past_the_end_is_an_empty_page(client, history):
    body = client.get("/api/jobs/processor/", {"offset": "9" * 30}).json()
    assert body["count"] == 2 and body["results"] == []


@pytest.mark.parametrize("pk", ["abc", "9" * 30, "-1"])
def test_a_detail_view_with_a_bad_id_is_a_404(client, history, pk):
    response = client.get(f"/api/jobs/processor/{pk}/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_the_api_never_publishes_a_url_password_stored_before_it_was_stripped(client, history):
    """Rows written before sources stripped credentials (or by a path that forgot)
    still hold `user:password@`; the API masks it on the way out."""
    from common.models import Batch, ProcessorJob, Provenance, SurveyJob

    mirror = "https://reader:mirror-pass-8642@mirror.example.org/pub/g.fa.gz"
    Provenance.objects.update(
        inputs=[{"filename": "g.fa.gz", "source_url": mirror, "sha256": "0" * 64}],
        commands=[["curl", mirror]],
        parameters={"mirror": mirror},
    )
    Batch.objects.update(metadata={"url": mirror, "k": 31})
    SurveyJob.objects.create(source="ensembl", parameters={"rest_url": mirror})
    ProcessorJob.objects.filter(pk=history["failed"].pk).update(
        failure_reason=f"could not fetch {mirror}"
    )
    for url in ("/api/results/", "/api/transcriptome-indices/", "/api/batches/",
                "/api/jobs/survey/", "/api/jobs/processor/"):  # fmt: skip
        body = client.get(url).content.decode()
        assert "mirror-pass-8642" not in body, url
        assert "https://reader:********@mirror.example.org/pub/g.fa.gz" in body, url
    [result] = client.get("/api/results/").json()["results"]
    assert result["provenance"]["inputs"][0]["sha256"] == "0" * 64  # the rest as it was
