"""The operators' overview in the admin and `/api/stats/?window=`: one set of
figures (foreman.stats), the page's tables and plots, and the API's JSON."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from common.models import DownloaderJob, JobState, PausedKind, ProcessorJob, SurveyJob
from foreman import stats
from foreman.heartbeat import record_beat

pytestmark = pytest.mark.django_db

LONG_REASON = "salmon exited with code 1: " + " ".join(f"line{n}" for n in range(80))


@pytest.fixture
def every_state():
    """Processor jobs in every state this hour, a downloader that failed three
    days ago, a surveyor created a week and a half ago, a Foreman, a pause."""
    now = timezone.now()
    ProcessorJob.objects.create(pipeline="smoke_test")  # created
    queued = ProcessorJob.objects.create(pipeline="smoke_test")
    queued.mark_queued("local")
    running = ProcessorJob.objects.create(pipeline="smoke_test")
    running.mark_queued("local")
    running.mark_started("worker-7", "1.0")
    done = []
    for n, seconds in enumerate([30, 90]):
        job = ProcessorJob.objects.create(pipeline="transcriptome_index_long")
        job.mark_queued("local")
        job.mark_started(f"worker-{n}", "1.0")
        job.mark_succeeded()
        ProcessorJob.objects.filter(pk=job.pk).update(
            start_time=now - timedelta(seconds=seconds + 60), end_time=now - timedelta(seconds=60)
        )
        done.append(job)
    failed = ProcessorJob.objects.create(pipeline="smoke_test")
    failed.mark_queued("local")
    failed.mark_started("worker-9", "1.0")
    failed.mark_failed(LONG_REASON)
    failed.set_log_location("/nowhere/processor.log")
    old = DownloaderJob.objects.create(downloader_task="files")
    old.mark_queued("local")
    old.mark_started("worker-d", "1.0")
    old.mark_failed("timed out")
    DownloaderJob.objects.filter(pk=old.pk).update(
        created_at=now - timedelta(days=3), end_time=now - timedelta(days=3)
    )
    ancient = SurveyJob.objects.create(source="ensembl")
    SurveyJob.objects.filter(pk=ancient.pk).update(created_at=now - timedelta(days=10))
    PausedKind.objects.create(kind="downloader", paused_by="ops")
    record_beat("foreman-host:1", 0.5, {})
    return {"running": running, "failed": failed, "old": old, "done": done}


@pytest.fixture
def frozen(monkeypatch):
    """The clock stops, so the page and the API compute the same window."""
    now = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: now)
    return now


def test_the_page_shows_counts_health_queues_failures_and_plots(admin_client, every_state):
    page = admin_client.get(reverse("overview"))
    assert page.status_code == 200
    counts = page.context["figures"]["counts"]
    hour = {"created": 1, "queued": 1, "running": 1, "succeeded": 2, "failed": 1}
    assert counts["1h"]["processor"] == hour
    assert counts["1h"]["downloader"] == dict.fromkeys(stats.STATES, 0)
    assert counts["24h"]["downloader"]["failed"] == 0
    assert counts["7d"]["downloader"]["failed"] == 1
    assert sum(counts["7d"]["survey"].values()) == 0  # ten days old
    html = page.content.decode()
    assert '<tr data-window="1h" data-kind="processor"><td>1h</td><td>processor</td>' \
           "<td>1</td><td>1</td><td>1</td><td>2</td><td>1</td></tr>" in html  # fmt: skip
    assert 'class="alive"' in html and "foreman-host:1" in html
    assert "worker-7" in html  # the running job's worker
    assert "<strong>paused</strong>" in html
    failed = every_state["failed"]
    assert LONG_REASON in html  # whole, not clipped
    assert reverse("admin:common_processorjob_change", args=[failed.pk]) in html
    assert reverse("admin:common_processorjob_log", args=[failed.pk]) in html
    assert f"downloader:{every_state['old'].pk}" not in html  # failed outside 24h
    assert '<div id="finished-plot"><svg' in html and '<div id="runtime-plot"><svg' in html
    assert "Jobs finished per hour" in html and "Runtime per pipeline" in html


def test_a_week_shows_older_failures_newest_first(admin_client, every_state):
    page = admin_client.get(reverse("overview"), {"window": "7d"})
    jobs = [row["job"] for row in page.context["failures"]]
    assert jobs == [f"processor:{every_state['failed'].pk}", f"downloader:{every_state['old'].pk}"]


def test_the_api_gives_the_page_figures(admin_client, client, every_state, frozen):
    for window in ("1h", "24h", "7d"):
        page = admin_client.get(reverse("overview"), {"window": window}).context["figures"]
        api = client.get("/api/stats/", {"window": window})
        assert api.status_code == 200
        assert api.json()["overview"] == page
    figures = client.get("/api/stats/?window=24h").json()["overview"]
    assert figures["runtimes"]["transcriptome_index_long"]["seconds"] == [30.0, 90.0]
    assert figures["runtimes"]["transcriptome_index_long"]["median_s"] == 60.0
    finished = figures["finished_per_hour"]
    assert sum(h["succeeded"] for h in finished) == 2 and sum(h["failed"] for h in finished) == 1
    assert len(finished) in (24, 25)  # every hour of the day, empty ones too
    assert figures["foreman"]["alive"] is True and figures["paused"] == ["downloader"]
    assert figures["queues"]["processor"]["in_flight"] == 2
    assert figures["queues"]["processor"]["created"] == 1
    assert figures["workers"][0]["worker"] == "worker-7"


@pytest.mark.parametrize("window", ["2h", "24", "", " 7d "])
def test_a_bad_window_is_a_400(admin_client, client, window):
    if window.strip() in stats.WINDOWS or not window:
        # a blank window is the default, spaces are forgiven
        assert client.get("/api/stats/", {"window": window}).status_code == 200
        return
    api = client.get("/api/stats/", {"window": window})
    assert api.status_code == 400 and "not one of 1h, 24h, 7d" in api.json()["window"]
    assert admin_client.get(reverse("overview"), {"window": window}).status_code == 400


def test_the_admin_home_links_the_overview_and_others_are_sent_to_log_in(admin_client, client):
    assert reverse("overview") in admin_client.get(reverse("admin:index")).content.decode()
    response = client.get(reverse("overview"))
    assert response.status_code == 302 and response.url.startswith("/admin/login/")


def test_a_dead_foreman_is_shown_as_not_alive(admin_client, every_state):
    from foreman.models import ForemanBeat

    ForemanBeat.objects.update(beat_at=timezone.now() - timedelta(hours=1))
    html = admin_client.get(reverse("overview")).content.decode()
    assert "NOT ALIVE" in html
    assert every_state["running"].state == JobState.RUNNING


def test_runs_by_state_are_counted_and_plotted(admin_client, client):
    from common.models import RunState, SequencingRun

    for number, state in enumerate(["complete", "archived", "archived", "failed"]):
        run = SequencingRun.objects.create(
            platform="illumina", run_id=f"230101_A01234_{number:04d}_AH", location="/runs/x"
        )
        if state != "sequencing":
            run.move_to(RunState.COMPLETE)
        if state in ("archived", "failed"):
            run.move_to(state)
    SequencingRun.objects.create(platform="nanopore", run_id="p1", location="/runs/p1")
    runs = client.get("/api/stats/").json()["overview"]["runs"]
    assert runs["illumina"]["archived"] == 2 and runs["illumina"]["complete"] == 1
    assert runs["illumina"]["failed"] == 1 and runs["nanopore"]["sequencing"] == 1
    html = admin_client.get(reverse("overview")).content.decode()
    assert '<div id="runs-plot"><svg' in html and "Sequencing runs by state" in html


def test_times_read_with_seconds_and_zone_as_in_the_cli(admin_client, every_state):
    html = admin_client.get(reverse("overview")).content.decode()
    beat = timezone.localtime(timezone.now(), timezone.get_fixed_timezone(0))
    assert f"last pass at {beat:%Y-%m-%d} " in html and " UTC (" in html
    assert "+00:00" not in html.split("<h2>Plots</h2>")[0]


def test_the_counts_of_every_window_take_one_query_per_kind(every_state, django_assert_num_queries):
    """Each kind's counts for the hour, the day and the week come from one grouped
    query with a filtered count per window."""
    now = timezone.now()
    with django_assert_num_queries(3):
        counts = stats.counts(now)
    assert counts["1h"]["processor"]["succeeded"] == 2
    assert counts["24h"]["downloader"]["failed"] == 0  # three days old
    assert counts["7d"]["downloader"]["failed"] == 1
    assert counts["7d"]["survey"]["created"] == 0  # ten days old
    assert counts["1h"]["processor"]["created"] == 1
