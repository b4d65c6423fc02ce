"""The operators' overview, linked from the admin's home: health, counts,
queues, recent failures and plots, from foreman.stats (as `/api/stats/` is)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.safestring import mark_safe

from foreman import plots, stats

admin.site.index_template = "admin/foreman/index.html"


def _job_links(row: dict) -> dict:
    model = f"common_{row['kind']}job"
    links = {"job_url": reverse(f"admin:{model}_change", args=[row["id"]])}
    if row["has_log"]:
        links["log_url"] = reverse(f"admin:{model}_log", args=[row["id"]])
    return {**row, **links}


def overview_view(request: HttpRequest) -> HttpResponse:
    try:
        window = stats.parse_window(request.GET.get("window"))
    except stats.BadWindow as error:
        return HttpResponse(f"window: {error}", status=400, content_type="text/plain")
    figures = stats.overview(window)
    counts = [
        {"kind": kind, "window": name, "states": [by_state[s] for s in stats.STATES]}
        for name, by_window in figures["counts"].items()
        for kind, by_state in by_window.items()
    ]
    context = {
        **admin.site.each_context(request),
        "title": "Overview",
        "figures": figures,
        "windows": list(stats.WINDOWS),
        "states": stats.STATES,
        "count_rows": counts,
        "failures": [_job_links(row) for row in figures["recent_failures"]],
        # matplotlib's own SVG, its text escaped by matplotlib: no input reaches it raw.
        "finished_plot": mark_safe(plots.finished_per_hour(figures["finished_per_hour"])),
        "runtime_plot": mark_safe(plots.runtime_distribution(figures["runtimes"])),
        "runs_plot": mark_safe(plots.runs_by_state(figures["runs"])),
    }
    return TemplateResponse(request, "admin/foreman/overview.html", context)
