"""Retry, cancel, pause and resume from the admin: staff only, confirmed first,
recorded, and through foreman.actions (what `manage.py jobs` runs)."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth import get_user_model
from django.urls import reverse

from common.models import JobState, PausedKind, ProcessorJob
from foreman.models import OperatorAction
from tests.foreman.helpers import smoke_job

pytestmark = pytest.mark.django_db

LIST = "admin:common_processorjob_changelist"


def failed_job(accession="web", reason="the tool crashed") -> ProcessorJob:
    job = smoke_job(accession, state="running")
    job.mark_failed(reason)
    return job


def succeeded_job(accession="done") -> ProcessorJob:
    job = smoke_job(accession, state="running")
    job.mark_succeeded()
    return job


@pytest.fixture
def not_staff_client(client):
    user = get_user_model().objects.create_user("visitor", password="x", is_staff=False)
    client.force_login(user)
    return client


def test_staff_retry_a_failed_job_from_its_page_after_confirming(admin_client, admin_user):
    job = failed_job()
    page = admin_client.get(reverse("admin:common_processorjob_change", args=[job.pk]))
    retry_url = reverse("admin:common_processorjob_retry", args=[job.pk])
    assert retry_url in page.content.decode()
    confirm = admin_client.get(retry_url)
    assert confirm.status_code == 200 and "Yes, retry" in confirm.content.decode()
    job.refresh_from_db()
    assert not job.retried  # asking is not doing
    done = admin_client.post(retry_url, {"confirmed": "yes"})
    assert done.status_code == 302
    assert done.url == reverse("admin:common_processorjob_change", args=[job.pk])
    job.refresh_from_db()
    assert job.retried and job.attempts[-1].state in (JobState.QUEUED, JobState.CREATED)
    recorded = OperatorAction.objects.get()
    assert recorded.action == "retry" and recorded.target == f"processor:{job.pk}"
    assert recorded.by == f"{admin_user.username} (admin)"
    assert f"processor:{job.attempts[-1].pk}" in recorded.outcome


def test_a_succeeded_job_is_not_retried_on_the_web_and_the_reason_is_shown(admin_client):
    job = succeeded_job()
    retry_url = reverse("admin:common_processorjob_retry", args=[job.pk])
    confirm = admin_client.get(retry_url).content.decode()
    assert "cannot be done" in confirm and "only failed jobs can be retried" in confirm
    done = admin_client.post(retry_url, {"confirmed": "yes"}, follow=True)
    shown = [str(m) for m in done.context["messages"]]
    assert any("only failed jobs can be retried" in m for m in shown), shown
    assert ProcessorJob.objects.count() == 1 and not OperatorAction.objects.exists()


def test_the_list_action_asks_then_retries_only_what_can_be(admin_client):
    bad, ok = failed_job("bad"), succeeded_job("ok")
    data = {"action": "retry_selected", ACTION_CHECKBOX_NAME: [bad.pk, ok.pk], "index": 0}
    ask = admin_client.post(reverse(LIST), data)
    html = ask.content.decode()
    assert ask.status_code == 200 and "Retry 2 job(s)?" in html
    assert html.count("cannot be done") == 1
    assert ProcessorJob.objects.count() == 2  # nothing done yet
    confirmed = {"action": "retry_selected", ACTION_CHECKBOX_NAME: [bad.pk, ok.pk],
                 "confirmed": "yes"}  # fmt: skip
    done = admin_client.post(reverse(LIST), confirmed, follow=True)
    shown = " | ".join(str(m) for m in done.context["messages"])
    assert f"retried processor job {bad.pk}" in shown and "only failed jobs" in shown
    bad.refresh_from_db(), ok.refresh_from_db()
    assert bad.retried and not ok.retried
    assert list(OperatorAction.objects.values_list("action", "target")) == [
        ("retry", f"processor:{bad.pk}")
    ]


def test_the_list_action_cancels_with_a_reason(admin_client, admin_user):
    running = smoke_job("long", state="queued")
    data = {"action": "cancel_selected", ACTION_CHECKBOX_NAME: [running.pk],
            "confirmed": "yes", "reason": "wrong organism"}  # fmt: skip
    admin_client.post(reverse(LIST), data)
    running.refresh_from_db()
    assert running.state == JobState.FAILED and running.no_retry
    assert "wrong organism" in running.failure_reason
    recorded = OperatorAction.objects.get()
    assert (recorded.action, recorded.by) == ("cancel", f"{admin_user.username} (admin)")


def test_staff_pause_and_resume_a_kind_from_the_list(admin_client, admin_user):
    listing = admin_client.get(reverse(LIST)).content.decode()
    pause_url = reverse("admin:common_processorjob_pause")
    assert pause_url in listing
    assert admin_client.get(pause_url).status_code == 200
    assert not PausedKind.objects.exists()
    admin_client.post(pause_url, {"confirmed": "yes", "reason": "disk full"})
    paused = PausedKind.objects.get()
    assert (paused.kind, paused.reason) == ("processor", "disk full")
    assert paused.paused_by == f"{admin_user.username} (admin)"
    listing = admin_client.get(reverse(LIST)).content.decode()
    assert reverse("admin:common_processorjob_resume") in listing and "are paused" in listing
    admin_client.post(reverse("admin:common_processorjob_resume"), {"confirmed": "yes"})
    assert not PausedKind.objects.exists()
    assert list(OperatorAction.objects.order_by("at", "id").values_list("action", "target")) == [
        ("pause", "processor"),
        ("resume", "processor"),
    ]
    record = admin_client.get(reverse("admin:foreman_operatoraction_changelist"))
    assert record.status_code == 200 and "disk full" in record.content.decode()


@pytest.mark.parametrize("anonymous", [True, False], ids=["anonymous", "not staff"])
def test_others_cannot_act(client, not_staff_client, anonymous):
    web = client if anonymous else not_staff_client
    if anonymous:
        web.logout()
    job = failed_job()
    urls = [reverse("admin:common_processorjob_retry", args=[job.pk]),
            reverse("admin:common_processorjob_cancel", args=[job.pk]),
            reverse("admin:common_processorjob_pause")]  # fmt: skip
    for url in urls:
        response = web.post(url, {"confirmed": "yes"})
        assert response.status_code == 302 and response.url.startswith("/admin/login/")
    data = {"action": "retry_selected", ACTION_CHECKBOX_NAME: [job.pk], "confirmed": "yes"}
    assert web.post(reverse(LIST), data).status_code == 302
    job.refresh_from_db()
    assert job.state == JobState.FAILED and not job.retried
    assert not PausedKind.objects.exists() and not OperatorAction.objects.exists()
