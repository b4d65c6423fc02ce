"""/api/runs/: the lab's sequencing runs, filtered, and one run with its state
history, batches, jobs, results and archive."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from common.models import SequencingRun
from tests.run_fixtures import MISEQ_RUN, NANOPORE_RUN, NOVASEQ_RUN

pytestmark = pytest.mark.django_db


def run_ids(client, **query) -> list[str]:
    response = client.get("/api/runs/", query)
    assert response.status_code == 200, response.content
    return [run["run_id"] for run in response.json()["results"]]


def test_runs_are_listed_newest_first_with_their_state(client, runs):
    body = client.get("/api/runs/").json()
    assert body["count"] == 3
    # by run date, newest first; a run without a date (still sequencing) last
    assert [r["run_id"] for r in body["results"]] == [MISEQ_RUN, NOVASEQ_RUN, NANOPORE_RUN]
    novaseq = body["results"][1]
    assert novaseq["state"] == "archived" and novaseq["flowcell"] == "HXXXXXXX"
    assert novaseq["url"].endswith(f"/api/runs/{NOVASEQ_RUN}/")
    assert "history" not in novaseq  # the list stays light


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"state": "archived"}, [NOVASEQ_RUN]),
        ({"state": "failed"}, [MISEQ_RUN]),
        ({"platform": "nanopore"}, [NANOPORE_RUN]),
        ({"instrument": "A01234"}, [NOVASEQ_RUN]),  # the instrument's id
        ({"instrument": "miseq"}, [MISEQ_RUN]),  # or its type, in any case
        ({"instrument": "A0123"}, []),  # the whole value
        ({"flowcell": "hxxxxxxx"}, [NOVASEQ_RUN]),
        ({"flowcell": "PAK00001", "platform": "illumina"}, []),
        ({"state": ""}, [MISEQ_RUN, NOVASEQ_RUN, NANOPORE_RUN]),  # empty filters nothing
    ],
)
def test_runs_filters(client, runs, query, expected):
    assert run_ids(client, **query) == expected


def test_since_is_a_change_of_state_or_a_run_date(client, runs):
    yesterday = (timezone.now() - timedelta(days=1)).isoformat()
    # the NovaSeq run changed state two days ago and ran in 2023: not since yesterday
    assert run_ids(client, since=yesterday) == [MISEQ_RUN, NANOPORE_RUN]
    assert run_ids(client, since="2023-02-01") == [MISEQ_RUN, NOVASEQ_RUN, NANOPORE_RUN]
    SequencingRun.objects.update(state_changed_at=datetime(2022, 1, 1, tzinfo=UTC))
    assert run_ids(client, since="2023-02-01") == [MISEQ_RUN]  # by its run date
    assert run_ids(client, since="2023-01-01T00:00:00+00:00") == [MISEQ_RUN, NOVASEQ_RUN]
    # a time in another zone: 2023-01-01T00:30+01:00 is 2022-12-31T23:30 UTC
    assert run_ids(client, since="2023-01-01T00:30:00+01:00") == [MISEQ_RUN, NOVASEQ_RUN]
    assert run_ids(client, since="2023-01-01T00:30:00+00:00") == [MISEQ_RUN]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"state": "done"}, "not one of sequencing, complete, archiving"),
        ({"platform": "pacbio"}, "not one of illumina, nanopore"),
        ({"since": "last tuesday"}, "not a date or time: 'last tuesday'"),
        ({"since": "2023-02-30"}, "not a date or time"),
    ],
)
def test_a_bad_filter_is_a_clear_error(client, runs, query, message):
    response = client.get("/api/runs/", query)
    assert response.status_code == 400
    [(name, text)] = response.json().items()
    assert name == next(iter(query)) and message in text


def test_the_page_cap_holds_for_runs(client, runs, settings):
    settings.REFINERY_API_MAX_PAGE_SIZE = 2
    body = client.get("/api/runs/", {"limit": 1000}).json()
    assert len(body["results"]) == 2 and body["count"] == 3 and body["next"]


def test_a_run_by_its_run_id_with_history_batches_jobs_results_and_archive(client, runs):
    response = client.get(f"/api/runs/{NOVASEQ_RUN}/")
    assert response.status_code == 200
    run = response.json()
    assert run["run_id"] == NOVASEQ_RUN and run["state"] == "archived"
    assert run["instrument_type"] == "NovaSeq 6000" and run["lanes"] == 2
    assert run["read_structure"][0]["cycles"] == 151

    history = run["history"]
    assert [(h["old_state"], h["new_state"]) for h in history] == [
        ("sequencing", "complete"),
        ("complete", "archiving"),
        ("archiving", "archived"),
    ]
    assert history[0]["job"] is None  # what the survey saw
    assert history[0]["reason"] == "CopyComplete.txt older than the grace period"
    first, process = runs["first"].pk, runs["process"].pk
    assert history[1]["job"] == {
        "kind": "downloader", "id": first,
        "url": f"http://testserver/api/jobs/downloader/{first}/",
    }  # fmt: skip
    assert history[2]["job"]["id"] == process and history[2]["job"]["kind"] == "processor"
    assert client.get(history[2]["job"]["url"]).json()["pipeline"] == "illumina_run_archive"
    assert all(h["at"].endswith(("Z", "+00:00")) for h in history)  # with a time zone

    batches = {b["variant"]: b for b in run["batches"]}
    assert set(batches) == {"archive", "fastq"}
    jobs = batches["archive"]["jobs"]
    # the download took two attempts: its chain shows once, as its latest attempt
    assert [(j["kind"], j["id"], j["state"], j["attempts"]) for j in jobs] == [
        ("downloader", runs["download"].pk, "succeeded", 2),
        ("processor", runs["process"].pk, "succeeded", 1),
    ]
    assert jobs[0]["attempt_ids"] == [runs["first"].pk, runs["download"].pk]
    assert jobs[0]["name"] == "illumina_run" and jobs[1]["name"] == "illumina_run_archive"
    [result] = batches["archive"]["results"]
    assert (result["size"], result["sha256"]) == (123456, "ab" * 32)
    assert batches["fastq"]["results"] == []
    assert [j["id"] for j in batches["fastq"]["jobs"]] == [runs["download"].pk]

    archive = run["archive"]
    assert archive["result"] == runs["archive"].pk and archive["size"] == 123456
    assert archive["url"].startswith("file://")
    assert archive["url"].endswith(f"/processor/{runs['process'].pk}/{NOVASEQ_RUN}.tar.zst")
    assert run["links"]["api"] == f"http://testserver/api/runs/{NOVASEQ_RUN}/"
    assert run["links"]["admin"].endswith(f"/admin/common/sequencingrun/{runs['run'].pk}/change/")


def test_the_archive_url_on_s3_is_where_the_object_is(client, runs, s3_storage):
    run = client.get(f"/api/runs/{NOVASEQ_RUN}/").json()
    key = f"processor/{runs['process'].pk}/{NOVASEQ_RUN}.tar.zst"
    assert run["archive"]["url"] == f"s3://{s3_storage}/permanent/{key}"


def test_a_run_without_an_archive_and_a_failed_run(client, runs):
    nanopore = client.get(f"/api/runs/{NANOPORE_RUN}/").json()
    assert nanopore["archive"] is None and nanopore["batches"] == []
    assert nanopore["history"] == []
    miseq = client.get(f"/api/runs/{MISEQ_RUN}/").json()
    assert miseq["state"] == "failed"
    assert miseq["state_reason"].startswith("the instrument reported the run failed")
    assert miseq["history"][-1]["new_state"] == "failed"


def test_an_unknown_run_is_a_404_and_the_api_is_read_only(client, runs):
    assert client.get("/api/runs/230101_A01234_0043_AHYYYYYYY/").status_code == 404
    assert client.get(f"/api/runs/{runs['run'].pk}/").status_code == 404  # not by pk
    assert client.delete(f"/api/runs/{NOVASEQ_RUN}/").status_code == 405


def test_the_same_run_id_on_two_platforms_asks_which(client, runs):
    SequencingRun.objects.create(platform="illumina", run_id=NANOPORE_RUN, location="/x")
    response = client.get(f"/api/runs/{NANOPORE_RUN}/")
    assert response.status_code == 400 and "platform" in response.json()
    chosen = client.get(f"/api/runs/{NANOPORE_RUN}/", {"platform": "nanopore"}).json()
    assert chosen["platform"] == "nanopore"


def test_secrets_in_a_reason_are_masked(client, runs, settings):
    settings.REFINERY_WEBHOOK_SECRET = "hook-secret-123456"
    runs["nanopore"].move_to("failed", "GET https://user:pw1234567@host/x failed")
    run = client.get(f"/api/runs/{NANOPORE_RUN}/").json()
    assert "pw1234567" not in run["state_reason"]
    assert "pw1234567" not in run["history"][-1]["reason"]


def test_the_root_lists_runs(client, runs):
    endpoints = client.get("/api/").json()["endpoints"]
    assert endpoints["runs"].endswith("/api/runs/")
