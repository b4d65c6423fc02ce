"""The operators' records: paused kinds."""

from __future__ import annotations

from django.contrib import admin

from common.models import PausedKind
from foreman.admin.base import ReadOnlyAdmin


@admin.register(PausedKind)
class PausedKindAdmin(ReadOnlyAdmin):
    """Paused and resumed with `manage.py jobs pause|resume KIND`."""

    list_display = ("kind", "paused_at", "paused_by", "reason")
