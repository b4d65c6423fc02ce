"""Job history and data in the Django admin. History is read-only here: jobs are
changed by the refinery (and `manage.py jobs`), never by hand."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import Truncator

from common.job_logs import read_log
from common.models import (
    Batch,
    ComputedFile,
    DownloaderJob,
    ForemanBeat,
    Job,
    Notification,
    Organism,
    OriginalFile,
    PausedKind,
    ProcessorJob,
    Provenance,
    SurveyJob,
    TranscriptomeIndex,
)


def admin_link(obj, text: str | None = None) -> str:
    if obj is None:
        return "-"
    url = reverse(f"admin:common_{obj._meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, text or str(obj))


def link_list(objects) -> str:
    objects = list(objects)
    if not objects:
        return "-"
    return format_html_join(mark_safe("<br>"), "{}", ((admin_link(o),) for o in objects))


class ReadOnlyAdmin(admin.ModelAdmin):
    """Staff may look, not touch."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class JobAdmin(ReadOnlyAdmin):
    """What every job kind's pages share: state, timing, the attempt chain, the log."""

    date_hierarchy = "created_at"
    list_display_links = ("id",)
    list_per_page = 50
    show_full_result_count = False  # counting millions of finished jobs is slow
    search_help_text = "a job id, a batch accession, or a dispatch id"
    common_fields = (
        "state",
        "attempt_chain",
        "failure_reason",
        "no_retry",
        "interrupted",
        "log",
        "created_at",
        "dispatched_at",
        "start_time",
        "end_time",
        "heartbeat_at",
        "duration",
        "worker_id",
        "worker_version",
        "dispatch_id",
        "ram_mb",
        "num_retries",
    )

    def get_search_results(self, request, queryset, search_term):
        results, duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if term.isdigit():
            results |= queryset.filter(pk=int(term))
        return results, duplicates

    @admin.display(description="reason")
    def short_reason(self, job: Job) -> str:
        return Truncator(job.failure_reason).chars(80)

    @admin.display(description="attempts")
    def attempt_chain(self, job: Job) -> str:
        attempts = job.attempts
        items = []
        for number, attempt in enumerate(attempts, start=1):
            label = f"attempt {number}: job {attempt.pk}, {attempt.state}"
            if attempt.failure_reason:
                label += f" ({Truncator(attempt.failure_reason).chars(60)})"
            items.append(
                (
                    format_html("<b>{}</b>", label)
                    if attempt.pk == job.pk
                    else admin_link(attempt, label),
                )
            )
        return format_html_join(mark_safe("<br>"), "{}", items)

    @admin.display(description="log")
    def log(self, job: Job) -> str:
        if not job.log_location:
            return "-"
        url = reverse(f"admin:common_{job._meta.model_name}_log", args=[job.pk])
        return format_html('<a href="{}">view log</a> <small>({})</small>', url, job.log_location)

    def get_urls(self):
        info = self.model._meta.app_label, self.model._meta.model_name
        return [
            path(
                "<int:job_id>/log/",
                self.admin_site.admin_view(self.log_view),
                name="{}_{}_log".format(*info),
            ),
            *super().get_urls(),
        ]

    def log_view(self, request: HttpRequest, job_id: int) -> HttpResponse:
        job = self.model.objects.filter(pk=job_id).first()
        if job is None or not self.has_view_permission(request, job):
            return HttpResponseNotFound("no such job")
        content = read_log(job)
        if content is None:
            return HttpResponseNotFound(f"{job} has no log yet")
        return HttpResponse(content, content_type="text/plain; charset=utf-8")


class BatchJobAdmin(JobAdmin):
    search_fields = ("batches__accession", "dispatch_id")

    @admin.display(description="batches")
    def batch_links(self, job: Job) -> str:
        return link_list(job.batches.all())

    @admin.display(description="files")
    def file_links(self, job: Job) -> str:
        return link_list(OriginalFile.objects.filter(batches__in=job.batches.all()).distinct())


@admin.register(SurveyJob)
class SurveyJobAdmin(JobAdmin):
    list_display = (
        "id",
        "source",
        "state",
        "created_at",
        "duration",
        "num_retries",
        "short_reason",
    )
    list_filter = ("state", "source", "created_at")
    search_fields = ("dispatch_id", "batches__accession")
    fields = ("source", "parameters", "found_batches", *JobAdmin.common_fields)
    readonly_fields = fields

    @admin.display(description="batches found")
    def found_batches(self, job: SurveyJob) -> str:
        return link_list(job.batches.all()[:100])


@admin.register(DownloaderJob)
class DownloaderJobAdmin(BatchJobAdmin):
    list_display = (
        "id",
        "downloader_task",
        "state",
        "created_at",
        "duration",
        "num_retries",
        "short_reason",
    )
    list_filter = ("state", "downloader_task", "created_at")
    fields = ("downloader_task", "batch_links", "file_links", *JobAdmin.common_fields)
    readonly_fields = fields


@admin.register(ProcessorJob)
class ProcessorJobAdmin(BatchJobAdmin):
    list_display = (
        "id",
        "pipeline",
        "state",
        "created_at",
        "duration",
        "num_retries",
        "short_reason",
    )
    list_filter = ("state", "pipeline", "created_at")
    fields = ("pipeline", "batch_links", "file_links", "results", *JobAdmin.common_fields)
    readonly_fields = fields

    @admin.display(description="results")
    def results(self, job: ProcessorJob) -> str:
        return link_list(job.computed_files.all())


@admin.register(Batch)
class BatchAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "source",
        "accession",
        "variant",
        "organism",
        "pipeline_required",
        "status",
        "updated_at",
    )
    list_filter = ("source", "status", "pipeline_required")
    search_fields = ("accession", "organism__scientific_name")
    fields = (
        "source",
        "accession",
        "variant",
        "organism",
        "pipeline_required",
        "status",
        "metadata",
        "survey_job",
        "files",
        "jobs",
        "results",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields

    @admin.display(description="files")
    def files(self, batch: Batch) -> str:
        return link_list(batch.original_files.all())

    @admin.display(description="jobs")
    def jobs(self, batch: Batch) -> str:
        return link_list([*batch.downloader_jobs.all(), *batch.processor_jobs.all()])

    @admin.display(description="results")
    def results(self, batch: Batch) -> str:
        return link_list(batch.computed_files.all())


@admin.register(OriginalFile)
class OriginalFileAdmin(ReadOnlyAdmin):
    list_display = ("id", "filename", "raw_format", "size", "is_downloaded", "created_at")
    list_filter = ("is_downloaded", "raw_format")
    search_fields = ("filename", "source_url", "batches__accession")
    readonly_fields = (
        "batch_links",
        "source_url",
        "filename",
        "raw_format",
        "expected_size",
        "expected_checksums",
        "size",
        "sha256",
        "temp_key",
        "is_downloaded",
        "downloaded_at",
        "created_at",
    )
    fields = readonly_fields

    @admin.display(description="batches")
    def batch_links(self, original: OriginalFile) -> str:
        return link_list(original.batches.all())


@admin.register(Organism)
class OrganismAdmin(ReadOnlyAdmin):
    list_display = ("scientific_name", "taxonomy_id", "created_at")
    search_fields = ("scientific_name", "=taxonomy_id")


@admin.register(ComputedFile)
class ComputedFileAdmin(ReadOnlyAdmin):
    list_display = ("id", "filename", "format", "size", "processor_job", "created_at")
    list_filter = ("format",)
    search_fields = ("filename", "key", "batches__accession", "sha256")
    readonly_fields = (
        "filename",
        "format",
        "size",
        "sha256",
        "key",
        "location",
        "job_link",
        "provenance_link",
        "batch_links",
        "created_at",
    )
    fields = readonly_fields

    @admin.display(description="location")
    def location(self, computed: ComputedFile) -> str:
        from common.storage import permanent_storage

        return permanent_storage().location(computed.key)

    @admin.display(description="processor job")
    def job_link(self, computed: ComputedFile) -> str:
        return admin_link(computed.processor_job)

    @admin.display(description="provenance")
    def provenance_link(self, computed: ComputedFile) -> str:
        return admin_link(computed.provenance)

    @admin.display(description="batches")
    def batch_links(self, computed: ComputedFile) -> str:
        return link_list(computed.batches.all())


@admin.register(Provenance)
class ProvenanceAdmin(ReadOnlyAdmin):
    list_display = ("id", "processor_name", "processor_version", "processor_job", "ended_at")
    list_filter = ("processor_name",)
    readonly_fields = (
        "processor_name",
        "processor_version",
        "docker_image",
        "tools",
        "commands",
        "inputs",
        "parameters",
        "started_at",
        "ended_at",
        "job_link",
    )
    fields = readonly_fields

    @admin.display(description="processor job")
    def job_link(self, provenance: Provenance) -> str:
        return admin_link(provenance.processor_job)


@admin.register(TranscriptomeIndex)
class TranscriptomeIndexAdmin(ReadOnlyAdmin):
    list_display = (
        "organism",
        "length",
        "k",
        "source_release",
        "assembly",
        "salmon_version",
        "created_at",
    )
    list_filter = ("length", "source_release")
    search_fields = ("organism__scientific_name", "assembly")
    readonly_fields = (
        "organism",
        "batch",
        "length",
        "k",
        "source_release",
        "assembly",
        "salmon_version",
        "file_link",
        "created_at",
    )
    fields = readonly_fields

    @admin.display(description="index file")
    def file_link(self, index: TranscriptomeIndex) -> str:
        return admin_link(index.computed_file)


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("subject", "job_kind", "job_id", "created_at", "delivered_at", "attempts")
    list_filter = ("job_kind", "delivered_at")
    search_fields = ("subject", "=job_id")
    readonly_fields = (
        "job_link",
        "subject",
        "body",
        "payload",
        "created_at",
        "email_sent_at",
        "webhook_sent_at",
        "delivered_at",
        "attempts",
        "last_error",
    )
    fields = readonly_fields

    @admin.display(description="job")
    def job_link(self, notification: Notification) -> str:
        from common.models import job_model

        job = job_model(notification.job_kind).objects.filter(pk=notification.job_id).first()
        return admin_link(job)


@admin.register(PausedKind)
class PausedKindAdmin(ReadOnlyAdmin):
    """Paused and resumed with `manage.py jobs pause|resume KIND`."""

    list_display = ("kind", "paused_at", "paused_by", "reason")


@admin.register(ForemanBeat)
class ForemanBeatAdmin(ReadOnlyAdmin):
    list_display = ("name", "beat_at", "passes", "last_pass_s", "started_at")
    readonly_fields = ("name", "started_at", "beat_at", "passes", "last_pass_s", "last_pass")
    fields = readonly_fields
