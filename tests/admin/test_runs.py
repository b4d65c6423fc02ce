"""The admin's runs and webhook deliveries: lists with their filters and search,
a run's page with its history, batches and jobs linked; read-only."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from common.models import RunStateChange, SequencingRun, WebhookDelivery
from tests.run_fixtures import MISEQ_RUN, NANOPORE_RUN, NOVASEQ_RUN

pytestmark = pytest.mark.django_db

RUNS = reverse("admin:common_sequencingrun_changelist")
DELIVERIES = reverse("admin:common_webhookdelivery_changelist")


def listed(admin_client, url, **query) -> list[str]:
    page = admin_client.get(url, query)
    assert page.status_code == 200
    return [str(obj) for obj in page.context["cl"].result_list]


def test_the_runs_list_colours_states_and_filters(admin_client, runs):
    html = admin_client.get(RUNS).content.decode()
    assert 'class="state state-archived" style="color: #2e7d32' in html  # green, as succeeded
    assert 'class="state state-failed" style="color: #c62828' in html  # red
    assert 'class="state state-sequencing" style="color: #1565c0' in html  # blue, at work
    assert "2 days" not in html and "48 h" in html  # in this state for, readable
    assert listed(admin_client, RUNS, state__exact="failed") == [MISEQ_RUN]
    assert listed(admin_client, RUNS, platform__exact="nanopore") == [NANOPORE_RUN]
    assert listed(admin_client, RUNS, instrument_type__exact="NovaSeq 6000") == [NOVASEQ_RUN]
    assert set(listed(admin_client, RUNS, run_date__gte="2023-02-01 00:00:00+00:00")) == {MISEQ_RUN}
    assert listed(admin_client, RUNS, q="0042_AHXX") == [NOVASEQ_RUN]  # by run id
    assert listed(admin_client, RUNS, q="PAK00001") == [NANOPORE_RUN]  # by flow cell


def test_a_runs_page_shows_its_history_batches_jobs_and_archive(admin_client, runs):
    run = runs["run"]
    page = admin_client.get(reverse("admin:common_sequencingrun_change", args=[run.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "state history" in html.lower()
    assert "CopyComplete.txt older than the grace period" in html
    for job in (runs["first"], runs["download"], runs["process"]):
        url = reverse(f"admin:common_{job.kind}job_change", args=[job.pk])
        assert url in html
    for batch in (runs["archive_batch"], runs["fastq_batch"]):
        assert reverse("admin:common_batch_change", args=[batch.pk]) in html
    assert reverse("admin:common_computedfile_change", args=[runs["archive"].pk]) in html
    assert "151T" in html  # the read structure, as people write it
    assert f"/api/runs/{NOVASEQ_RUN}/" in html
    assert 'name="state_changes-0-reason"' not in html  # shown, not editable


def test_runs_and_their_history_are_read_only(admin_client, runs):
    run = runs["run"]
    url = reverse("admin:common_sequencingrun_change", args=[run.pk])
    assert admin_client.post(url, {"flowcell": "X"}).status_code == 403
    delete = reverse("admin:common_sequencingrun_delete", args=[run.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert admin_client.get(reverse("admin:common_sequencingrun_add")).status_code == 403
    assert SequencingRun.objects.get(pk=run.pk).flowcell == "HXXXXXXX"
    assert RunStateChange.objects.filter(run=run).count() == 3


def deliveries(run) -> list[WebhookDelivery]:
    changes = list(run.history)
    url = "https://hooks.example.org/refinery?token=s3cr3t-t0ken"
    return [WebhookDelivery.objects.create(state_change=c, url=url) for c in changes]


def test_the_deliveries_list_says_delivered_pending_failing_and_given_up(admin_client, runs):
    delivered, failing, given_up = deliveries(runs["run"])
    now = timezone.now()
    WebhookDelivery.objects.filter(pk=delivered.pk).update(delivered_at=now, attempts=1)
    WebhookDelivery.objects.filter(pk=failing.pk).update(
        attempts=3, last_error="HTTP 503", next_attempt_at=now + timedelta(minutes=2)
    )
    WebhookDelivery.objects.filter(pk=given_up.pk).update(
        attempts=50, last_error="gave up after 50 attempt(s) over 24 h 00 min: HTTP 503"
    )
    [pending] = deliveries(runs["miseq"])[:1]
    html = admin_client.get(DELIVERIES).content.decode()
    for status in ("delivered", "failing", "given up", "pending"):
        assert f"state state-{status}" in html
    assert "gave up after 50 attempt(s)" in html and "HTTP 503" in html
    assert "s3cr3t-t0ken" not in html  # the URL's secret parameter is masked
    by_status = {
        status: [
            obj.pk
            for obj in admin_client.get(DELIVERIES, {"status": status}).context["cl"].result_list
        ]
        for status in ("delivered", "failing", "given up", "pending")
    }
    assert by_status["delivered"] == [delivered.pk]
    assert by_status["failing"] == [failing.pk]
    assert by_status["given up"] == [given_up.pk]
    assert pending.pk in by_status["pending"] and delivered.pk not in by_status["pending"]
    found = admin_client.get(DELIVERIES, {"q": MISEQ_RUN}).context["cl"].result_list
    assert [d.state_change.run.run_id for d in found] == [MISEQ_RUN, MISEQ_RUN]


def test_a_deliverys_page_shows_the_body_it_sends(admin_client, runs):
    first = deliveries(runs["run"])[0]
    page = admin_client.get(reverse("admin:common_webhookdelivery_change", args=[first.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "&quot;new_state&quot;: &quot;complete&quot;" in html
    assert "s3cr3t-t0ken" not in html
    url = reverse("admin:common_webhookdelivery_change", args=[first.pk])
    assert admin_client.post(url, {"attempts": 0}).status_code == 403
    history = admin_client.get(reverse("admin:common_webhookdelivery_history", args=[first.pk]))
    assert history.status_code == 200 and "s3cr3t-t0ken" not in history.content.decode()


@pytest.mark.parametrize("model", [SequencingRun, WebhookDelivery], ids=lambda m: m.__name__)
def test_anonymous_users_are_sent_to_the_login_page(client, model):
    response = client.get(reverse(f"admin:common_{model._meta.model_name}_changelist"))
    assert response.status_code == 302 and response.url.startswith("/admin/login/")
