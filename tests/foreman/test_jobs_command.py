"""`manage.py jobs`: what operators see and do."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from common.models import DownloaderJob, JobState, PausedKind, ProcessorJob, SurveyJob
from foreman.heartbeat import record_beat
from foreman.models import ForemanBeat, Notification
from foreman.passes import Foreman
from tests.foreman.helpers import smoke_job

pytestmark = pytest.mark.django_db


def jobs(*args) -> str:
    out = StringIO()
    call_command("jobs", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def failed(accession="x", reason="boom", **kwargs) -> ProcessorJob:
    job = smoke_job(accession, state="running")
    job.mark_failed(reason, **kwargs)
    return job


def test_list_shows_a_table_and_filters_by_kind_and_state():
    ok = smoke_job("ok", state="running")
    ok.mark_succeeded()
    bad = failed("bad", "the tool crashed")
    downloader = DownloaderJob.objects.create(downloader_task="files")
    table = jobs("list")
    assert table.splitlines()[0].split() == [
        "JOB", "STATE", "WHAT", "TRY", "RAM", "CREATED", "RAN", "REASON"
    ]  # fmt: skip
    assert f"processor:{bad.pk}" in table and "the tool crashed" in table
    assert f"downloader:{downloader.pk}" in table
    only_failed = json.loads(jobs("list", "--state", "failed", "--kind", "processors", "--json"))
    assert [row["job"] for row in only_failed] == [f"processor:{bad.pk}"]
    assert jobs("list", "--since", "2d", "--kind", "survey") == "no jobs match\n"


def test_list_since_takes_a_date_or_an_age_in_hours_or_days():
    now = timezone.now()
    ages = {"3d": timedelta(days=3), "30h": timedelta(hours=30), "5h": timedelta(hours=5),
            "1h": timedelta(hours=1)}  # fmt: skip
    surveys = {}
    for name, age in ages.items():
        surveys[name] = SurveyJob.objects.create(source="local_files")
        SurveyJob.objects.filter(pk=surveys[name].pk).update(created_at=now - age)
    smoke_job("not-a-survey")

    def listed(since: str) -> list[str]:
        rows = json.loads(jobs("list", "--since", since, "--kind", "survey", "--json"))
        return sorted(row["job"] for row in rows)

    def expected(*names: str) -> list[str]:
        return sorted(f"survey:{surveys[n].pk}" for n in names)

    assert listed("2d") == expected("30h", "5h", "1h")
    assert listed("6h") == expected("5h", "1h")
    assert listed("31h") == expected("30h", "5h", "1h")
    two_days_ago = (now - timedelta(days=2)).date()
    assert listed(two_days_ago.isoformat()) == expected("30h", "5h", "1h")
    assert listed((now + timedelta(days=1)).date().isoformat()) == []


def test_show_gives_the_attempt_chain_batches_and_reasons():
    first = failed("chain", "out of disk")
    Foreman(outbox_grace_s=0).run_pass()
    second = first.attempts[-1]
    text = jobs("show", f"processor:{second.pk}")
    assert "out of disk" in text and "local_files:chain" in text
    assert f"processor:{first.pk}" in text and f"processor:{second.pk} *" in text
    detail = json.loads(jobs("show", str(second.pk), "--kind", "processor", "--json"))
    assert [a["job"] for a in detail["attempts"]] == [f"processor:{first.pk}",
                                                      f"processor:{second.pk}"]  # fmt: skip
    assert detail["attempts"][0]["failure_reason"] == "out of disk"
    assert detail["batches"][0]["batch"] == "local_files:chain"


def test_a_bare_id_two_kinds_share_is_refused_with_the_choices():
    ProcessorJob.objects.bulk_create([ProcessorJob(pk=7777, pipeline="smoke_test")])
    DownloaderJob.objects.bulk_create([DownloaderJob(pk=7777, downloader_task="files")])
    with pytest.raises(CommandError, match=r"ambiguous \(downloader:7777, processor:7777\)"):
        jobs("show", "7777")
    assert "downloader:7777" in jobs("show", "downloader:7777")
    with pytest.raises(CommandError, match="there is no processor job 99999"):
        jobs("show", "processor:99999")


def test_retry_makes_one_new_attempt_even_of_a_given_up_job():
    job = failed(reason="bad input", no_retry=True)
    Foreman(outbox_grace_s=0).run_pass()
    job.refresh_from_db()
    assert job.given_up_at and not job.retried
    out = jobs("retry", f"processor:{job.pk}", "--ram", "4096")
    job.refresh_from_db()
    assert job.retried and job.retry.state == JobState.QUEUED and job.retry.ram_mb == 4096
    assert f"processor:{job.retry.pk}" in out
    with pytest.raises(CommandError, match="already retried"):
        jobs("retry", f"processor:{job.pk}")
    with pytest.raises(CommandError, match="only failed jobs can be retried"):
        jobs("retry", f"processor:{job.retry.pk}")


def test_a_succeeded_job_is_not_retried_and_a_dry_run_says_so():
    ok = smoke_job("ok", state="running")
    ok.mark_succeeded()
    with pytest.raises(CommandError, match="is succeeded: only failed jobs can be retried"):
        jobs("retry", f"processor:{ok.pk}", "--dry-run")
    with pytest.raises(CommandError, match="only failed jobs can be retried"):
        jobs("retry", f"processor:{ok.pk}")
    ok.refresh_from_db()
    assert not ok.retried and ProcessorJob.objects.count() == 1
    bad = failed("bad")
    assert f"processor:{bad.pk}" in jobs("retry", f"processor:{bad.pk}", "--dry-run")


def test_cli_actions_are_recorded_with_the_user_and_host():
    from foreman.actions import operator_name
    from foreman.models import OperatorAction

    bad = failed("bad")
    jobs("retry", f"processor:{bad.pk}")
    jobs("pause", "processor")
    jobs("pause", "processor")  # already paused: nothing done, nothing recorded
    recorded = list(OperatorAction.objects.order_by("id").values_list("action", "by"))
    assert recorded == [("retry", operator_name()), ("pause", operator_name())]


def test_bulk_retry_takes_failures_since_a_time_whose_reason_matches():
    timeouts = [failed(f"t{i}", "download timed out after 60 s") for i in range(3)]
    other = failed("other", "checksum mismatch")
    preview = json.loads(jobs("retry", "--failed-since", "1h", "--reason", "timed out",
                              "--dry-run", "--json"))  # fmt: skip
    assert sorted(row["job"] for row in preview) == sorted(f"processor:{j.pk}" for j in timeouts)
    assert not ProcessorJob.objects.filter(retried=True).exists()
    jobs("retry", "--failed-since", "1h", "--reason", "timed out")
    assert set(ProcessorJob.objects.filter(retried=True).values_list("pk", flat=True)) == {
        j.pk for j in timeouts
    }
    other.refresh_from_db()
    assert not other.retried
    assert jobs("retry", "--failed-since", "2099-01-01") == "nothing to retry\n"
    with pytest.raises(CommandError, match="not a regular expression"):
        jobs("retry", "--failed-since", "1h", "--reason", "(")


def test_cancel_stops_a_job_for_good_without_telling_anyone():
    queued = smoke_job("q", state="queued")
    out = jobs("cancel", f"processor:{queued.pk}", "--reason", "wrong organism")
    assert "cancelled" in out
    queued.refresh_from_db()
    assert queued.state == JobState.FAILED and queued.no_retry and queued.given_up_at
    assert queued.failure_reason == "cancelled by an operator: wrong organism"
    pending = failed("pending-retry")
    jobs("cancel", f"processor:{pending.pk}")
    Foreman(outbox_grace_s=0).run_pass()
    pending.refresh_from_db()
    assert not pending.retried
    assert not Notification.objects.exists()
    assert "already given up on" in jobs("cancel", f"processor:{queued.pk}")
    done = smoke_job("done", state="running")
    done.mark_succeeded()
    with pytest.raises(CommandError, match="succeeded: nothing to cancel"):
        jobs("cancel", f"processor:{done.pk}")


def test_pause_and_resume_a_kind():
    assert "paused downloader jobs" in jobs("pause", "downloaders", "--reason", "ENA is down")
    assert "already paused" in jobs("pause", "downloader")
    record_beat("host:1", 0.1, Counter())  # a live Foreman: status exits 0
    status = jobs("status")
    assert "ENA is down" in status
    assert PausedKind.objects.get().kind == "downloader"
    assert "resumed downloader jobs" in jobs("resume", "downloader")
    assert "were not paused" in jobs("resume", "downloader")
    with pytest.raises(CommandError, match="unknown job kind 'uploader'"):
        jobs("pause", "uploader")


def test_status_is_a_health_check_failing_when_no_foreman_is_alive():
    out = StringIO()
    with pytest.raises(CommandError, match="the Foreman is not alive") as raised:
        call_command("jobs", "status", stdout=out)
    assert raised.value.returncode == 1
    assert "NOT ALIVE" in out.getvalue() and "KIND" in out.getvalue()
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("jobs", "status", "--json", stdout=out)
    assert json.loads(out.getvalue())["foreman"]["alive"] is False
    record_beat("host:1", 0.1, Counter())
    assert json.loads(jobs("status", "--json"))["foreman"]["alive"] is True


def test_log_prints_a_jobs_output(tmp_path):
    job = smoke_job()
    log = tmp_path / "job.log"
    log.write_bytes(b"refinery: running\nstep one\n")
    job.set_log_location(str(log))
    assert jobs("log", f"processor:{job.pk}") == "refinery: running\nstep one\n"
    other = smoke_job("nolog")
    with pytest.raises(CommandError, match="has no log yet"):
        jobs("log", f"processor:{other.pk}")


def test_log_tail_prints_the_last_lines_with_progress_collapsed(tmp_path):
    job = smoke_job()
    log = tmp_path / "job.log"
    log.write_bytes(b"one\ntwo\nthree\nindex 5%\rindex 100%\n")
    job.set_log_location(str(log))
    assert jobs("log", f"processor:{job.pk}", "--tail", "2") == "three\nindex 100%\n"
    assert jobs("log", f"processor:{job.pk}", "--tail", "50").startswith("one\ntwo\n")
    with pytest.raises(CommandError, match="--tail takes"):
        jobs("log", f"processor:{job.pk}", "--tail", "0")


@pytest.mark.django_db(transaction=True)
def test_log_follow_prints_the_output_live_until_the_job_ends(start_manage, manage):
    job = smoke_job("followed", sleep_s=1.5)
    job.mark_queued("local")
    start_manage("worker")
    followed = manage("jobs", "log", f"processor:{job.pk}", "--follow", "--poll", "0.1")
    assert followed.stdout.startswith(f"refinery: running processor job {job.pk}")
    assert f"refinery: processor job {job.pk} (succeeded)" in followed.stdout
    assert f"== processor:{job.pk} succeeded" in followed.stderr


def test_the_foreman_records_its_heartbeat_for_health_checks():
    with pytest.raises(SystemExit) as no_foreman:
        call_command("foreman", "--check", stdout=StringIO(), stderr=StringIO())
    assert no_foreman.value.code == 1
    call_command("foreman", "--once", stdout=StringIO())
    out = StringIO()
    with pytest.raises(SystemExit) as alive:
        call_command("foreman", "--check", "--max-age", "60", stdout=out)
    assert alive.value.code == 0 and "last pass 0 s ago" in out.getvalue()
    ForemanBeat.objects.update(beat_at=timezone.now() - timedelta(minutes=10))
    with pytest.raises(SystemExit) as stale:
        call_command("foreman", "--check", "--max-age", "60", stdout=StringIO(), stderr=out)
    assert stale.value.code == 1
