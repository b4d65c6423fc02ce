"""What every admin page of the refinery shares: links, and read-only access."""

from __future__ import annotations

import json
import shlex

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from common.secrets import redact_data


def admin_link(obj, text: str | None = None) -> str:
    if obj is None:
        return "-"
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, text or str(obj))


# A page links at most this many related rows per field (a survey may find
# thousands of batches, a batch hold thousands of files).
LINK_LIST_MAX = 100


def link_list(objects, limit: int = LINK_LIST_MAX) -> str:
    """Links to `objects` (a queryset or a list), the first `limit` of them."""
    objects = list(objects[: limit + 1])
    if not objects:
        return "-"
    links = format_html_join(mark_safe("<br>"), "{}", ((admin_link(o),) for o in objects[:limit]))
    if len(objects) > limit:
        links += format_html("<br><small>… and more: the first {} are shown</small>", limit)
    return links


def redacted(field_name: str):
    """A read-only field showing the model's `field_name` (text or JSON that came
    from outside) with secrets masked, rows stored before credentials were
    stripped too. Name it in `fields` instead of `field_name`."""

    @admin.display(description=field_name.replace("_", " "))
    def show(self, obj) -> str:
        value = redact_data(getattr(obj, field_name))
        if isinstance(value, str):
            return value
        if not value:
            return "-"
        return format_html('<pre class="readable">{}</pre>', readable_json(value))

    return show


def readable_json(value) -> str:
    """JSON indented for reading, keys in order."""
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str)


def shell_lines(commands) -> str:
    """Commands (argument lists) as the shell lines an operator would type, each
    argument quoted where the shell needs it."""
    lines = [shlex.join(str(arg) for arg in command) for command in commands or []]
    if not lines:
        return "-"
    return format_html('<pre class="readable">{}</pre>', "\n".join(lines))


class BatchLinks:
    """For objects with `batches`: a field linking each of them."""

    @admin.display(description="batches")
    def batch_links(self, obj) -> str:
        return link_list(obj.batches.all())


class SafeChangeList(ChangeList):
    """A list whose bad query parameters are refused as the admin refuses others
    (a redirect with `?e=1`), never a server error: Django lets OverflowError and
    some ValueErrors of its date hierarchy through (`?created_at__year=9999`), and
    a NUL character through to PostgreSQL (`?state__exact=%00`)."""

    def get_filters(self, request):
        for name, values in request.GET.lists():  # PostgreSQL refuses NUL in any text
            if "\x00" in name or any("\x00" in value for value in values):
                raise IncorrectLookupParameters(f"a NUL character in {name!r}")
        try:
            return super().get_filters(request)
        except (OverflowError, ValueError) as error:
            raise IncorrectLookupParameters(error) from error


class ReadOnlyAdmin(admin.ModelAdmin):
    """Staff may look, not touch."""

    def get_changelist(self, request, **kwargs):
        return SafeChangeList

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
