"""Scheduled surveys in the embedded deployment: the Foreman starts each one on
its cron, once per due time, whatever restarts or other Foremen happen."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from common.models import SurveyJob
from foreman.models import SurveySchedule
from foreman.schedules import start_due_surveys

pytestmark = pytest.mark.django_db(transaction=True)


def at(hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2026, 3, 2, hour, minute, second, tzinfo=UTC)


@pytest.fixture
def hourly(settings, tmp_path, refinery_dirs):
    runs = tmp_path / "runs"
    runs.mkdir()
    settings.REFINERY_DISPATCHER = "local"
    settings.REFINERY_SCHEDULED_SURVEYS = [
        {"name": "runs", "cron": "0 * * * *", "args": ["illumina_runs", str(runs)]}
    ]
    return runs


def test_each_due_time_starts_one_survey_and_a_restart_neither_skips_nor_doubles(hourly):
    assert start_due_surveys(at(10, 30)) == 0  # first seen: due times count from now
    assert start_due_surveys(at(10, 59, 59)) == 0
    assert start_due_surveys(at(11, 0, 5)) == 1
    assert start_due_surveys(at(11, 0, 10)) == 0  # the next pass: already started
    assert start_due_surveys(at(11, 30)) == 0
    job = SurveyJob.objects.get()
    assert job.source == "illumina_runs"
    assert job.parameters == {"dirs": [str(hourly.resolve())], "archive_failed": False}
    # Down from 11:30 to 13:10 (12:00 and 13:00 missed): the latest runs once.
    assert start_due_surveys(at(13, 10)) == 1
    assert start_due_surveys(at(13, 20)) == 0
    row = SurveySchedule.objects.get()
    assert row.last_due_at == at(13, 0) and row.last_started_at == at(13, 10)
    assert row.last_job == SurveyJob.objects.order_by("-id").first()
    assert SurveyJob.objects.count() == 2


def test_a_schedule_whose_args_cannot_start_records_why_once_per_due_time(hourly, settings):
    settings.REFINERY_SCHEDULED_SURVEYS = [
        {"name": "gone", "cron": "0 * * * *", "args": ["illumina_runs", str(hourly / "nope")]}
    ]
    start_due_surveys(at(10, 30))
    assert start_due_surveys(at(11, 1)) == 0
    assert start_due_surveys(at(11, 2)) == 0
    row = SurveySchedule.objects.get()
    assert "nope is not a folder" in row.last_error and row.last_due_at == at(11, 0)
    assert not SurveyJob.objects.exists()


@pytest.mark.postgres_only
def test_two_foremen_at_once_start_a_due_survey_once(hourly):
    """Two Foremen's passes in two threads (two connections) on PostgreSQL."""
    start_due_surveys(at(10, 30))
    barrier, started = threading.Barrier(4), []

    def foreman_pass():
        try:
            barrier.wait()
            started.append(start_due_surveys(at(11, 0, 1)))
        finally:
            connection.close()

    threads = [threading.Thread(target=foreman_pass) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(started) == [0, 0, 0, 1]
    assert SurveyJob.objects.count() == 1


def test_the_foreman_process_starts_a_due_survey_once_and_jobs_schedules_shows_it(hourly, manage):
    # Due daily at the minute an hour ago: one due time passed since the schedule
    # was first seen, and none comes while the test runs, however slow the machine.
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    cron = f"{hour_ago.minute} {hour_ago.hour} * * *"
    schedules = json.dumps([{"name": "runs", "cron": cron, "args": ["illumina_runs", str(hourly)]}])
    env = {"REFINERY_SCHEDULED_SURVEYS": schedules, "REFINERY_DISPATCHER": "local"}
    SurveySchedule.objects.create(
        name="runs", cron=cron, first_seen_at=hour_ago - timedelta(minutes=5)
    )
    for _ in range(2):
        manage("foreman", "--once", env=env)
    job = SurveyJob.objects.get()
    shown = json.loads(manage("jobs", "schedules", "--json", env=env).stdout)
    assert [s["name"] for s in shown] == ["runs"]
    assert shown[0]["last_job"] == f"survey:{job.pk}" and shown[0]["started_by"] == "foreman"
    last = datetime.fromisoformat(shown[0]["last_due_at"])
    assert last == hour_ago.replace(second=0, microsecond=0)
    assert datetime.fromisoformat(shown[0]["next_due_at"]) == last + timedelta(days=1)
    table = manage("jobs", "schedules", env=env).stdout
    assert f"survey:{job.pk}" in table and "illumina_runs" in table
