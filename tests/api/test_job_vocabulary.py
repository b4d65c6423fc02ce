"""One vocabulary: the API, the admin and `jobs list` count attempts the same
way, read durations the same way, and show exit codes, retries and giving up."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from common.models import ProcessorJob
from foreman.job_summaries import job_summary
from tests.foreman.helpers import smoke_job

pytestmark = pytest.mark.django_db


@pytest.fixture
def retried_job():
    """A first attempt killed by SIGKILL and given up on, then retried by hand."""
    job = smoke_job("oom", state="running")
    job.set_exit_code(137)
    job.mark_failed("killed by the kernel (out of memory)")
    ProcessorJob.objects.filter(pk=job.pk).update(end_time=job.start_time + timedelta(seconds=125))
    job.refresh_from_db()
    job.give_up()
    retry = job.create_retry()
    job.refresh_from_db()
    return job, retry


def test_the_api_shows_attempts_exit_codes_retries_and_labels_as_the_cli(retried_job):
    job, retry = retried_job
    shown = APIClient().get(f"/api/jobs/processor/{job.pk}/").json()
    cli = job_summary(job)
    assert shown["attempt"] == cli["attempt"] == 1
    assert shown["exit_code"] == cli["exit_code"] == 137
    assert shown["retried"] is True and shown["given_up_at"]
    assert shown["duration"] == "2 min 05 s" and shown["duration_s"] == 125.0
    assert (shown["pipeline"], shown["pipeline_label"]) == ("smoke_test", "smoke test")
    assert APIClient().get(f"/api/jobs/processor/{retry.pk}/").json()["attempt"] == 2


def test_the_admin_says_the_same(admin_client, retried_job):
    job, retry = retried_job
    page = admin_client.get(reverse("admin:common_processorjob_change", args=[job.pk]))
    html = page.content.decode()
    assert "137 (killed by signal 9)" in html
    assert f"job {retry.pk}" in html and "yes, at " in html
    listing = admin_client.get(reverse("admin:common_processorjob_changelist")).content.decode()
    assert "Num retries" not in listing and "Attempt" in listing
