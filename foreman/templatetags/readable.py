"""Template filters for the operators' pages: times as the CLI and admin show them."""

from __future__ import annotations

from datetime import datetime

from django import template

from foreman.cli_tables import when

register = template.Library()


@register.filter
def moment(value) -> str:
    """An ISO 8601 time (as /api/stats/ gives it) read as `2026-05-01 12:00:05 UTC`."""
    if not value:
        return "-"
    try:
        parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return when(parsed)
