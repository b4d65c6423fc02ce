"""The admin: every model's pages render for staff; anonymous users log in first."""

import pytest
from django.contrib import admin
from django.urls import reverse

from common.models import (
    Batch,
    DownloaderJob,
    OriginalFile,
    ProcessorJob,
    Provenance,
    SurveyJob,
)
from refinery.cli import OWN_APPS

# Every page the refinery registers (jobs, data, runs, engines, …): a new model's
# pages are tested the day they are registered.
MODELS = sorted(
    (model for model in admin.site._registry if model._meta.app_label in OWN_APPS),
    key=lambda model: model.__name__,
)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_admin_page_renders_for_staff(admin_client, history, model):
    name = f"{model._meta.app_label}_{model._meta.model_name}"
    listing = admin_client.get(reverse(f"admin:{name}_changelist"))
    assert listing.status_code == 200
    obj = model.objects.first()
    if (
        obj is not None
    ):  # the history has rows of most models; runs and engines have tests of their own
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
    log_url = reverse("admin:common_processorjob_log", args=[failed.pk])
    log = admin_client.get(log_url, {"raw": 1})
    assert log.status_code == 200 and log.content == b"salmon said hello\n"
    page = admin_client.get(log_url).content.decode()
    assert "salmon said hello" in page and "all 1 lines" in page


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


@pytest.mark.parametrize(
    "query",
    [
        {"q": "\u00b2"},  # str.isdigit() says yes, int() says no
        {"q": "9" * 30},  # more than any id
        {"created_at__year": "99999999999"},
        {"created_at__year": "9999"},  # the year after it is past what Python can hold
        {"created_at__year": "9999", "created_at__month": "12"},
        {"created_at__year": "9999", "created_at__month": "12", "created_at__day": "31"},
        {"created_at__year": "2024", "created_at__month": "13"},
        {"created_at__year": "abc"},
        {"id__gt": "abc"},
        {"state__exact": "\x00"},  # PostgreSQL refuses NUL characters
        {"pipeline__exact": "x\x00"},
        {"q": "\x00"},
    ],
)
def test_hostile_list_parameters_are_not_server_errors(admin_client, history, query):
    admin_client.raise_request_exception = False
    url = reverse("admin:common_processorjob_changelist")
    response = admin_client.get(url, query)
    assert response.status_code in (200, 302), response.status_code
    if response.status_code == 302:  # the admin's own answer to parameters it refuses
        assert response.url == f"{url}?e=1"
    else:
        assert response.context["cl"].result_count == 0


@pytest.mark.parametrize("pk", ["abc", "9" * 30])
def test_a_bad_id_on_a_job_page_is_not_a_server_error(admin_client, history, pk):
    admin_client.raise_request_exception = False
    page = admin_client.get(f"/admin/common/processorjob/{pk}/change/")
    assert page.status_code == 302 and page.url == reverse("admin:index")
    log = admin_client.get(f"/admin/common/processorjob/{pk}/log/")
    assert log.status_code in (302, 404)  # not a number: the admin's redirect for unknown ids


def test_a_page_links_at_most_a_hundred_related_rows(admin_client, history):
    batch = Batch.objects.get()
    files = OriginalFile.objects.bulk_create(
        OriginalFile(source_url=f"http://x/{n}.fa.gz", filename=f"{n}.fa.gz") for n in range(150)
    )
    batch.original_files.add(*files)
    page = admin_client.get(reverse("admin:common_batch_change", args=[batch.pk])).content.decode()
    every = batch.original_files.all()
    linked = [f for f in every if reverse("admin:common_originalfile_change", args=[f.pk]) in page]
    assert len(every) == 151 and len(linked) == 100
    assert "… and more: the first 100 are shown" in page


def test_pages_never_show_a_url_password_stored_before_it_was_stripped(admin_client, history):
    mirror = "https://reader:mirror-pass-8642@mirror.example.org/pub/g.fa.gz"
    OriginalFile.objects.update(source_url=mirror)
    Provenance.objects.update(
        inputs=[{"source_url": mirror, "size": 7}],
        commands=[["curl", mirror]],
        parameters={"mirror": mirror},
    )
    Batch.objects.update(metadata={"url": mirror})
    SurveyJob.objects.update(parameters={"rest_url": mirror})
    for model in (OriginalFile, Provenance, Batch, SurveyJob):
        obj = model.objects.get()
        url = reverse(f"admin:common_{model._meta.model_name}_change", args=[obj.pk])
        page = admin_client.get(url).content.decode()
        assert "mirror-pass-8642" not in page, model
        assert "https://reader:********@mirror.example.org/pub/g.fa.gz" in page, model
    provenance = reverse("admin:common_provenance_change", args=[Provenance.objects.get().pk])
    page = admin_client.get(provenance).content.decode()
    assert "&quot;size&quot;: 7" in page  # JSON shown as JSON (HTML-escaped)


# Each job kind's list filters (state, source/task/pipeline, date), with a value that
# finds the history's rows and one that does not.
JOB_FILTERS = [
    (SurveyJob, "source", "ensembl", "local_files", 1),
    (DownloaderJob, "downloader_task", "transcriptome", "files", 1),
    (ProcessorJob, "pipeline", "transcriptome_index_long", "smoke_test", 2),
]


@pytest.mark.parametrize(("model", "what", "found", "not_found", "count"), JOB_FILTERS,
                         ids=lambda v: getattr(v, "__name__", None))  # fmt: skip
def test_job_lists_filter_by_state_task_or_pipeline_and_date(
    admin_client, history, model, what, found, not_found, count
):
    from datetime import timedelta

    from django.utils import timezone

    url = reverse(f"admin:common_{model._meta.model_name}_changelist")

    def shown(**query) -> int:
        response = admin_client.get(url, query)
        assert response.status_code == 200, response
        return response.context["cl"].result_count

    specs = admin_client.get(url).context["cl"].filter_specs
    assert [spec.field_path for spec in specs] == ["state", what, "created_at"]
    assert shown(**{f"{what}__exact": found}) == count
    assert shown(**{f"{what}__exact": not_found}) == 0
    state = model.objects.first().state
    assert shown(state__exact=state) == model.objects.filter(state=state).count() > 0
    assert shown(state__exact="running") == 0
    old = model.objects.create(**{what: found})
    model.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=30))
    changelist = admin_client.get(url).context["cl"]
    [dates] = [spec for spec in changelist.filter_specs if spec.field_path == "created_at"]
    [past_week] = [c for c in dates.choices(changelist) if c["display"] == "Past 7 days"]
    response = admin_client.get(url + past_week["query_string"])
    assert response.context["cl"].result_count == count
    assert shown() == count + 1
