"""Job history: the three job kinds, their attempt chains, batches, files and logs."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import Truncator

from common.models import DownloaderJob, Job, OriginalFile, ProcessorJob, SurveyJob
from foreman import log_text
from foreman.admin.base import BatchLinks, ReadOnlyAdmin, admin_link, link_list, redacted
from foreman.admin.operator import OperatorActionsMixin
from foreman.cli_tables import span
from foreman.job_summaries import what as job_what
from runner.job_logs import read_log

# Each state's colour and icon, on every list and page (failed red, running blue,
# succeeded green); the icon says it too, for whoever does not see the colour.
STATE_LOOKS = {
    "created": ("#616161", "○"),
    "queued": ("#6d4c41", "…"),
    "running": ("#1565c0", "▶"),
    "succeeded": ("#2e7d32", "✓"),
    "failed": ("#c62828", "✗"),
}


def state_badge(state: str, looks: dict[str, tuple[str, str]] = STATE_LOOKS) -> str:
    """A state in its colour, with its icon."""
    colour, icon = looks.get(state, ("inherit", ""))
    return format_html(
        '<span class="state state-{}" style="color: {}; font-weight: bold">{} {}</span>',
        state,
        colour,
        icon,
        state,
    )


class JobAdmin(OperatorActionsMixin, ReadOnlyAdmin):
    """What every job kind's pages share: state, timing, the attempt chain, the log."""

    date_hierarchy = "created_at"
    list_display_links = ("id",)
    list_per_page = 50
    show_full_result_count = False  # counting millions of finished jobs is slow
    search_help_text = "a job id, a batch accession, or a dispatch id"
    common_fields = (
        "shown_state",
        "operator_buttons",
        "attempt_chain",
        "failure_reason",
        "shown_no_retry",
        "shown_interrupted",
        "log",
        "created_at",
        "dispatched_at",
        "start_time",
        "end_time",
        "heartbeat_at",
        "shown_duration",
        "worker_id",
        "worker_version",
        "dispatch_id",
        "ram_mb",
        "attempt",
        "shown_exit_code",
        "shown_retried",
        "shown_given_up",
    )

    def get_search_results(self, request, queryset, search_term):
        results, duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        # ASCII digits only: str.isdigit() also says yes to "²", which int() refuses.
        if term.isascii() and term.isdigit() and int(term) < 2**63:
            results |= queryset.filter(pk=int(term))
        return results, duplicates

    @admin.display(description="state", ordering="state")
    def shown_state(self, job: Job) -> str:
        return state_badge(job.state)

    @admin.display(description="duration")
    def shown_duration(self, job: Job) -> str:
        return span(job.duration)

    @admin.display(description="interrupted")
    def shown_interrupted(self, job: Job) -> str:
        # Words, not Django's boolean icons: a red "✗" on a succeeded job read as a failure.
        return "yes: stopped by its worker (SIGTERM)" if job.interrupted else "no"

    @admin.display(description="no retry")
    def shown_no_retry(self, job: Job) -> str:
        return "yes: no new attempt is made" if job.no_retry else "no"

    @admin.display(description="attempt", ordering="num_retries")
    def attempt(self, job: Job) -> int:
        """Counted as `jobs list` counts it (TRY): the first attempt is 1."""
        return job.num_retries + 1

    @admin.display(description="exit code")
    def shown_exit_code(self, job: Job) -> str:
        if job.exit_code is None:
            return "-"
        if job.exit_code > 128:
            return f"{job.exit_code} (killed by signal {job.exit_code - 128})"
        return str(job.exit_code)

    @admin.display(description="retried")
    def shown_retried(self, job: Job) -> str:
        if not job.retried:
            return "no"
        return format_html("yes: by {}", admin_link(job.retry, f"job {job.retry.pk}"))

    @admin.display(description="given up")
    def shown_given_up(self, job: Job) -> str:
        return f"yes, at {job.given_up_at:%Y-%m-%d %H:%M:%S %Z}" if job.given_up_at else "no"

    @admin.display(description="what")
    def what(self, job: Job) -> str:
        """The task or pipeline by its name, with the label the API and CLI give it."""
        name = job_what(job)
        field = {"downloader": "downloader_task", "processor": "pipeline", "survey": "source"}
        label = getattr(job, f"get_{field[job.kind]}_display")()
        return format_html("{} <small>({})</small>", name, label) if label != name else name

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
        if request.GET.get("raw"):
            return HttpResponse(content, content_type="text/plain; charset=utf-8")
        show_all = bool(request.GET.get("all"))
        text = log_text.collapse_progress(content.decode("utf-8", "replace"))
        shown, total = log_text.tail(text, None if show_all else log_text.TAIL_LINES)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Log of {job}",
            "opts": self.model._meta,
            "job": job,
            "job_url": reverse(f"admin:common_{job._meta.model_name}_change", args=[job.pk]),
            "text": shown,
            "total": total,
            "clipped": not show_all and total > log_text.TAIL_LINES,
            "tail_lines": log_text.TAIL_LINES,
        }
        return TemplateResponse(request, "admin/foreman/job_log.html", context)


class BatchJobAdmin(BatchLinks, JobAdmin):
    search_fields = ("batches__accession", "dispatch_id")

    @admin.display(description="files")
    def file_links(self, job: Job) -> str:
        return link_list(OriginalFile.objects.filter(batches__in=job.batches.all()).distinct())


@admin.register(SurveyJob)
class SurveyJobAdmin(JobAdmin):
    list_display = (
        "id",
        "what",
        "shown_state",
        "created_at",
        "shown_duration",
        "attempt",
        "short_reason",
    )
    list_filter = ("state", "source", "created_at")
    search_fields = ("dispatch_id", "batches__accession")
    fields = ("source", "shown_parameters", "found_batches", *JobAdmin.common_fields)
    readonly_fields = fields
    shown_parameters = redacted("parameters")

    @admin.display(description="batches found")
    def found_batches(self, job: SurveyJob) -> str:
        return link_list(job.batches.all())


@admin.register(DownloaderJob)
class DownloaderJobAdmin(BatchJobAdmin):
    list_display = (
        "id",
        "what",
        "shown_state",
        "created_at",
        "shown_duration",
        "attempt",
        "short_reason",
    )
    list_filter = ("state", "downloader_task", "created_at")
    fields = ("downloader_task", "batch_links", "file_links", *JobAdmin.common_fields)
    readonly_fields = fields


@admin.register(ProcessorJob)
class ProcessorJobAdmin(BatchJobAdmin):
    list_display = (
        "id",
        "what",
        "shown_state",
        "created_at",
        "shown_duration",
        "attempt",
        "short_reason",
    )
    list_filter = ("state", "pipeline", "created_at")
    fields = ("pipeline", "batch_links", "file_links", "results", *JobAdmin.common_fields)
    readonly_fields = fields

    @admin.display(description="results")
    def results(self, job: ProcessorJob) -> str:
        return link_list(job.computed_files.all())
