"""The webhook deliveries each change of a run's state owes, in the admin:
read-only, with their body and last error masked (the Foreman delivers them)."""

from __future__ import annotations

import json

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator

from common.models import WebhookDelivery
from common.secrets import redact, redact_data
from foreman import webhooks
from foreman.admin.base import ReadOnlyAdmin, admin_link
from foreman.admin.jobs import STATE_LOOKS, state_badge
from foreman.admin.runs import run_state
from foreman.cli_tables import span

# A delivery's state in the colours and icons of the jobs'.
DELIVERY_LOOKS = {
    "pending": STATE_LOOKS["queued"],
    "failing": ("#e65100", "↻"),
    "delivered": STATE_LOOKS["succeeded"],
    "given up": STATE_LOOKS["failed"],
}


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
