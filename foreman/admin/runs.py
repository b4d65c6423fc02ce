"""The lab's sequencing runs in the admin: their states (coloured as jobs' are)
with their history, batches, jobs and results, and the webhook deliveries each
change of state owes. Read-only, like the rest of the history: runs move with
their jobs, deliveries with the Foreman."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.db.models import Count, prefetch_related_objects
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import Truncator

from common.models import RunStateChange, SequencingRun, WebhookDelivery
from common.secrets import redact, redact_data
from foreman import plots, webhooks
from foreman.admin.base import ReadOnlyAdmin, admin_link, redacted
from foreman.admin.jobs import STATE_LOOKS, state_badge
from foreman.cli_tables import span
from foreman.run_archives import archive_of, storage_url

# A run's states in the colours and icons of the jobs' that do the same: at work
# blue ▶, waiting for its jobs brown …, done green ✓, failed red ✗.
RUN_STATE_LOOKS = {
    "sequencing": STATE_LOOKS["running"],
    "complete": STATE_LOOKS["queued"],
    "archiving": STATE_LOOKS["running"],
    "demultiplexing": STATE_LOOKS["running"],
    "basecalling": STATE_LOOKS["running"],
    "archived": STATE_LOOKS["succeeded"],
    "demultiplexed": STATE_LOOKS["succeeded"],
    "basecalled": STATE_LOOKS["succeeded"],
    "failed": STATE_LOOKS["failed"],
}
# And a delivery's.
DELIVERY_LOOKS = {
    "pending": STATE_LOOKS["queued"],
    "failing": ("#e65100", "↻"),
    "delivered": STATE_LOOKS["succeeded"],
    "given up": STATE_LOOKS["failed"],
}


def run_state(state: str) -> str:
    return state_badge(state, RUN_STATE_LOOKS)


class RunStateChangeInline(admin.TabularInline):
    """The run's history, oldest first: read-only."""

    model = RunStateChange
    fields = ("at", "old_state", "shown_new_state", "shown_reason", "job_link", "after")
    readonly_fields = fields
    ordering = ("at", "id")
    extra = 0
    can_delete = False
    verbose_name = "change of state"
    verbose_name_plural = "state history"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="new state")
    def shown_new_state(self, change: RunStateChange) -> str:
        return run_state(change.new_state)

    @admin.display(description="reason")
    def shown_reason(self, change: RunStateChange) -> str:
        return redact(change.reason) or "-"

    @admin.display(description="job")
    def job_link(self, change: RunStateChange) -> str:
        if change.job_id is None:
            return "-"
        url = reverse(f"admin:common_{change.job_kind}job_change", args=[change.job_id])
        return format_html('<a href="{}">{} job {}</a>', url, change.job_kind, change.job_id)

    @admin.display(description="after")
    def after(self, change: RunStateChange) -> str:
        """How long the run was in the state it left."""
        previous = (
            RunStateChange.objects.filter(run_id=change.run_id, at__lte=change.at, id__lt=change.id)
            .order_by("-at", "-id")
            .values_list("at", flat=True)
            .first()
        )
        return span(change.at - previous) if previous else "-"


@admin.register(SequencingRun)
class SequencingRunAdmin(ReadOnlyAdmin):
    list_display = (
        "run_id",
        "platform",
        "instrument_type",
        "instrument_id",
        "flowcell",
        "run_date",
        "shown_state",
        "in_state_for",
        "short_reason",
    )
    list_filter = ("state", "platform", "instrument_type", "run_date")
    search_fields = ("run_id", "flowcell")
    search_help_text = "a run id or a flow cell"
    list_per_page = 50
    inlines = [RunStateChangeInline]
    fields = (
        "run_id",
        "platform",
        "shown_state",
        "shown_state_reason",
        "state_changed_at",
        "in_state_for",
        "flowcell",
        "instrument_id",
        "instrument_type",
        "run_number",
        "run_date",
        "location",
        "shown_read_structure",
        "lanes",
        "tile_count",
        "sample_sheet_sha256",
        "shown_metadata",
        "survey_job",
        "batches_and_jobs",
        "archive",
        "demultiplexing",
        "webhook_deliveries",
        "api_link",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
    shown_metadata = redacted("metadata")
    shown_state_reason = redacted("state_reason")

    def get_object(self, request, object_id, from_field=None):
        """The run with its batches, their jobs and results read up front: the page
        shows them all, and the archive is found among them."""
        run = super().get_object(request, object_id, from_field)
        if run is not None:
            prefetch_related_objects(
                [run],
                "batches__downloader_jobs",
                "batches__processor_jobs",
                "batches__computed_files",
            )
        return run

    @admin.display(description="state", ordering="state")
    def shown_state(self, run: SequencingRun) -> str:
        return run_state(run.state)

    @admin.display(description="in this state for", ordering="state_changed_at")
    def in_state_for(self, run: SequencingRun) -> str:
        return span(timezone.now() - run.state_changed_at)

    @admin.display(description="reason")
    def short_reason(self, run: SequencingRun) -> str:
        return Truncator(redact(run.state_reason)).chars(80) or "-"

    @admin.display(description="read structure")
    def shown_read_structure(self, run: SequencingRun) -> str:
        reads = [
            f"{read.get('cycles', '?')}{'I' if read.get('is_index') else 'T'}"
            for read in run.read_structure or []
            if isinstance(read, dict)
        ]
        return " ".join(reads) or "-"

    @admin.display(description="tiles")
    def tile_count(self, run: SequencingRun) -> str:
        return str(len(run.tiles)) if run.tiles else "-"

    @admin.display(description="batches, their jobs and results")
    def batches_and_jobs(self, run: SequencingRun) -> str:
        rows = []
        for batch in sorted(run.batches.all(), key=lambda batch: batch.pk):
            jobs = sorted(
                [*batch.downloader_jobs.all(), *batch.processor_jobs.all()],
                key=lambda job: (job.created_at, job.kind, job.pk),
            )
            job_links = format_html_join(
                mark_safe(", "),
                "{} {}",
                ((admin_link(job, f"{job.kind} job {job.pk}"), state_badge(job.state))
                 for job in jobs),
            )  # fmt: skip
            results = format_html_join(
                mark_safe(", "),
                "{} ({} bytes)",
                (
                    (admin_link(f), f.size)
                    for f in sorted(batch.computed_files.all(), key=lambda f: f.pk)
                ),
            )
            rows.append(
                format_html(
                    "<li>{} — {}, {}<br>jobs: {}<br>results: {}</li>",
                    admin_link(batch),
                    batch.pipeline_required,
                    batch.status,
                    job_links or "-",
                    results or "-",
                )
            )
        if not rows:
            return "-"
        return format_html("<ul>{}</ul>", mark_safe("".join(rows)))

    @admin.display(description="archive")
    def archive(self, run: SequencingRun) -> str:
        computed = archive_of(run)
        if computed is None:
            return "-"
        return format_html(
            "{} — {} bytes, SHA-256 {}<br><small>{}</small>",
            admin_link(computed),
            computed.size,
            computed.sha256,
            storage_url(computed.key),
        )

    @admin.display(description="demultiplexing")
    def demultiplexing(self, run: SequencingRun) -> str:
        """The latest bcl2fastq job's figures per lane and sample, and a plot."""
        stats = list(run.latest_demultiplex_stats())
        if not stats:
            return "-"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:,}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    row.lane, row.sample_id, row.index or "-", row.reads,
                    f"{row.percent_of_lane:.2f} %" if row.percent_of_lane is not None else "-",
                    f"{row.percent_q30:.1f} %" if row.percent_q30 is not None else "-",
                    row.mean_quality if row.mean_quality is not None else "-",
                )
                for row in stats
            ),
        )  # fmt: skip
        table = format_html(
            '<table class="demultiplexing"><thead><tr><th>lane</th><th>sample</th>'
            "<th>index</th><th>reads</th><th>% of lane</th><th>% ≥ Q30</th>"
            "<th>mean quality</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )
        # matplotlib's own SVG: its text escaped by matplotlib.
        plot = mark_safe(plots.reads_per_sample(stats))
        job = admin_link(stats[0].processor_job)
        return format_html("{}<br>by {}<div>{}</div>", table, job, plot)

    @admin.display(description="webhook deliveries")
    def webhook_deliveries(self, run: SequencingRun) -> str:
        counts = WebhookDelivery.objects.filter(state_change__run=run).aggregate(
            total=Count("id"), delivered=Count("delivered_at")
        )
        if not counts["total"]:
            return "-"
        url = (
            reverse("admin:common_webhookdelivery_changelist") + "?" + urlencode({"q": run.run_id})
        )
        return format_html(
            '<a href="{}">{} delivered, {} not yet</a>',
            url,
            counts["delivered"],
            counts["total"] - counts["delivered"],
        )

    @admin.display(description="in the API")
    def api_link(self, run: SequencingRun) -> str:
        url = reverse("api:sequencingrun-detail", kwargs={"run_id": run.run_id})
        return format_html('<a href="{}">{}</a>', url, url)


class DeliveryStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [(status, status) for status in webhooks.STATUSES]

    def queryset(self, request, queryset):
        if self.value() in webhooks.STATUSES:
            return queryset.filter(webhooks.status_query(self.value()))
        return queryset


class Shown:
    """An object as a page's title and breadcrumbs show it: its text redacted (a
    delivery's text names its URL, which may hold a token)."""

    def __init__(self, obj) -> None:
        self._obj = obj

    def __str__(self) -> str:
        return redact(str(self._obj))

    def __getattr__(self, name: str):
        return getattr(self._obj, name)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    """Each change of a run's state owed to each webhook: delivered, pending (not
    tried yet), failing (tried, to be tried again) or given up, with the last error."""

    list_display = (
        "id",
        "run_link",
        "change",
        "shown_url",
        "shown_status",
        "attempts",
        "next_attempt",
        "delivered_at",
        "short_error",
    )
    list_filter = (DeliveryStatusFilter,)
    search_fields = ("state_change__run__run_id",)
    search_help_text = "a run id"
    list_select_related = ("state_change__run",)
    list_per_page = 100
    fields = (
        "run_link",
        "change",
        "shown_url",
        "shown_status",
        "attempts",
        "next_attempt",
        "delivered_at",
        "shown_last_error",
        "created_at",
        "shown_body",
    )
    readonly_fields = fields

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        titles = {"subtitle": redact(str(obj))} if obj else {}
        response = super().change_view(request, object_id, form_url,
                                       {**titles, **(extra_context or {})})  # fmt: skip
        context = getattr(response, "context_data", None) or {}
        if context.get("original") is not None:
            context["original"] = Shown(context["original"])
        return response

    def history_view(self, request, object_id, extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        titles = (
            {"title": f"Change history: {redact(str(obj))}", "object": Shown(obj)} if obj else {}
        )
        return super().history_view(request, object_id, {**titles, **(extra_context or {})})

    @admin.display(description="run")
    def run_link(self, delivery: WebhookDelivery) -> str:
        return admin_link(delivery.state_change.run)

    @admin.display(description="change")
    def change(self, delivery: WebhookDelivery) -> str:
        change = delivery.state_change
        return format_html(
            "{} → {} <small>at {}</small>",
            change.old_state or "(new)",
            run_state(change.new_state),
            timezone.localtime(change.at).strftime("%Y-%m-%d %H:%M:%S %Z"),
        )

    @admin.display(description="URL")
    def shown_url(self, delivery: WebhookDelivery) -> str:
        return redact(delivery.url)

    @admin.display(description="status")
    def shown_status(self, delivery: WebhookDelivery) -> str:
        return state_badge(webhooks.status_of(delivery), DELIVERY_LOOKS)

    @admin.display(description="next attempt", ordering="next_attempt_at")
    def next_attempt(self, delivery: WebhookDelivery) -> str:
        if webhooks.status_of(delivery) in ("delivered", "given up"):
            return "-"
        wait = delivery.next_attempt_at - timezone.now()
        return "now" if wait.total_seconds() <= 0 else f"in {span(wait)}"

    @admin.display(description="last error")
    def short_error(self, delivery: WebhookDelivery) -> str:
        return Truncator(redact(delivery.last_error)).chars(100) or "-"

    @admin.display(description="last error")
    def shown_last_error(self, delivery: WebhookDelivery) -> str:
        return redact(delivery.last_error) or "-"

    @admin.display(description="body sent")
    def shown_body(self, delivery: WebhookDelivery) -> str:
        payload = redact_data(webhooks.payload(delivery.state_change))
        return format_html("<pre>{}</pre>", json.dumps(payload, indent=2, ensure_ascii=False))
