"""What every admin page of the refinery shares: links, and read-only access."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe


def admin_link(obj, text: str | None = None) -> str:
    if obj is None:
        return "-"
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, text or str(obj))


def link_list(objects) -> str:
    objects = list(objects)
    if not objects:
        return "-"
    return format_html_join(mark_safe("<br>"), "{}", ((admin_link(o),) for o in objects))


class BatchLinks:
    """For objects with `batches`: a field linking each of them."""

    @admin.display(description="batches")
    def batch_links(self, obj) -> str:
        return link_list(obj.batches.all())


class ReadOnlyAdmin(admin.ModelAdmin):
    """Staff may look, not touch."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
