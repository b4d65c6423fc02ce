"""The operators' records: paused kinds. (The Foreman's own records are in
its app's admin.)"""

from __future__ import annotations

from django.contrib import admin

from common.admin.base import ReadOnlyAdmin
from common.models import PausedKind


@admin.register(PausedKind)
class PausedKindAdmin(ReadOnlyAdmin):
    """Paused and resumed with `manage.py jobs pause|resume KIND`."""

    list_display = ("kind", "paused_at", "paused_by", "reason")
