"""The sequencers' side records: Nanopore pod5 files as the survey saw them,
and the basecalling engines that pull work."""

from __future__ import annotations

from django.contrib import admin

from api.models import Engine
from foreman.admin.base import ReadOnlyAdmin
from surveyor.models import Pod5File


@admin.register(Pod5File)
class Pod5FileAdmin(ReadOnlyAdmin):
    list_display = ("path", "run", "size", "end_signature", "batch", "last_seen_at")
    list_filter = ("end_signature",)
    search_fields = ("path", "run__run_id")


@admin.register(Engine)
class EngineAdmin(ReadOnlyAdmin):
    """Engines are added and removed with `manage.py engines`, not here."""

    list_display = ("name", "created_at", "last_contact_at")
    search_fields = ("name",)
    fields = ("name", "created_at", "last_contact_at")
    readonly_fields = fields
