"""The lab's sequencing runs in the admin: their states (coloured as jobs' are)
with their history, batches, jobs, results and the webhook deliveries each
change owes (deliveries.py lists those). Read-only, like the rest of the
history: runs move with their jobs."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin
from django.db.models import Count, prefetch_related_objects
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import Truncator

from common.models import RunStateChange, SequencingRun, WebhookDelivery
from common.secrets import redact
from foreman import plots
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
