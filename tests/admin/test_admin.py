"""The admin: every model's pages render for staff; anonymous users log in first."""

import pytest
from django.urls import reverse

from common.models import (
    Batch,
    ComputedFile,
    DownloaderJob,
    Organism,
    OriginalFile,
    PausedKind,
    ProcessorJob,
    Provenance,
    SurveyJob,
    TranscriptomeIndex,
)
from foreman.models import ForemanBeat, Notification

MODELS = [SurveyJob, DownloaderJob, ProcessorJob, Batch, OriginalFile, Organism, ComputedFile,
          Provenance, TranscriptomeIndex, Notification, PausedKind, ForemanBeat]  # fmt: skip


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_admin_page_renders_for_staff(admin_client, history, model):
    name = f"{model._meta.app_label}_{model._meta.model_name}"
    listing = admin_client.get(reverse(f"admin:{name}_changelist"))
    assert listing.status_code == 200
    obj = model.objects.first()
    detail = admin_client.get(reverse(f"admin:{name}_change", args=[obj.pk]))
    assert detail.status_code == 200
    assert admin_client.get(reverse(f"admin:{name}_add")).status_code == 403


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_anonymous_users_are_sent_to_the_login_page(client, db, model):
    name = f"{model._meta.app_label}_{model._meta.model_name}"
    response = client.get(reverse(f"admin:{name}_changelist"))
    assert response.status_code == 302 and response.url.startswith("/admin/login/")


def test_a_failed_job_links_its_retry_log_and_batches(admin_client, history):
    failed, retry = history["failed"], history["retry"]
    page = admin_client.get(reverse("admin:common_processorjob_change", args=[failed.pk]))
    html = page.content.decode()
    assert reverse("admin:common_processorjob_change", args=[retry.pk]) in html
    assert "salmon exited with code 1: out of disk" in html
    assert "refinery_demonstrans" in html
    log = admin_client.get(reverse("admin:common_processorjob_log", args=[failed.pk]))
    assert log.status_code == 200 and log.content == b"salmon said hello\n"


def test_history_is_read_only(admin_client, history):
    failed = history["failed"]
    url = reverse("admin:common_processorjob_change", args=[failed.pk])
    response = admin_client.post(url, {"ram_mb": 1})
    assert response.status_code == 403
    delete = reverse("admin:common_processorjob_delete", args=[failed.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert ProcessorJob.objects.filter(pk=failed.pk).exists()


def test_search_finds_jobs_by_id_accession_and_dispatch_id(admin_client, history):
    url = reverse("admin:common_processorjob_changelist")
    by_id = admin_client.get(url, {"q": str(history["retry"].pk)})
    assert by_id.context["cl"].result_count == 1
    by_accession = admin_client.get(url, {"q": "refinery_demonstrans"})
    assert by_accession.context["cl"].result_count == 2
    ProcessorJob.objects.filter(pk=history["retry"].pk).update(
        dispatch_id="REFINERY_PROCESSOR_4096/dispatch-1700000000-abcd1234"
    )
    by_dispatch = admin_client.get(url, {"q": "dispatch-1700000000-abcd1234"})
    assert by_dispatch.context["cl"].result_count == 1
