"""The data: batches, their files, organisms, results and their provenance."""

from __future__ import annotations

from django.contrib import admin
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils.html import format_html

from common.models import (
    Batch,
    ComputedFile,
    Organism,
    OriginalFile,
    Provenance,
    TranscriptomeIndex,
)
from common.secrets import redact_data
from foreman.admin.base import (
    BatchLinks,
    ReadOnlyAdmin,
    admin_link,
    link_list,
    redacted,
    shell_lines,
)


@admin.register(Batch)
class BatchAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "source",
        "accession",
        "variant",
        "organism",
        "pipeline_required",
        "status",
        "updated_at",
    )
    list_filter = ("source", "status", "pipeline_required")
    search_fields = ("accession", "organism__scientific_name")
    fields = (
        "source",
        "accession",
        "variant",
        "organism",
        "pipeline_required",
        "status",
        "shown_metadata",
        "survey_job",
        "files",
        "jobs",
        "results",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
    shown_metadata = redacted("metadata")

    @admin.display(description="files")
    def files(self, batch: Batch) -> str:
        return link_list(batch.original_files.all())

    @admin.display(description="jobs")
    def jobs(self, batch: Batch) -> str:
        return link_list([*batch.downloader_jobs.all(), *batch.processor_jobs.all()])

    @admin.display(description="results")
    def results(self, batch: Batch) -> str:
        return link_list(batch.computed_files.all())


@admin.register(OriginalFile)
class OriginalFileAdmin(BatchLinks, ReadOnlyAdmin):
    list_display = ("id", "filename", "raw_format", "size", "is_downloaded", "created_at")
    list_filter = ("is_downloaded", "raw_format")
    search_fields = ("filename", "source_url", "batches__accession")
    readonly_fields = (
        "batch_links",
        "shown_source_url",
        "filename",
        "raw_format",
        "expected_size",
        "expected_checksums",
        "size",
        "sha256",
        "temp_key",
        "is_downloaded",
        "downloaded_at",
        "created_at",
    )
    fields = readonly_fields
    shown_source_url = redacted("source_url")


@admin.register(Organism)
class OrganismAdmin(ReadOnlyAdmin):
    list_display = ("scientific_name", "taxonomy_id", "created_at")
    search_fields = ("scientific_name", "=taxonomy_id")


@admin.register(ComputedFile)
class ComputedFileAdmin(BatchLinks, ReadOnlyAdmin):
    list_display = (
        "id",
        "filename",
        "format",
        "readable_size",
        "short_sha256",
        "download",
        "processor_job",
        "created_at",
    )
    list_filter = ("format",)
    search_fields = ("filename", "key", "batches__accession", "sha256")
    readonly_fields = (
        "filename",
        "format",
        "readable_size",
        "sha256",
        "download",
        "key",
        "location",
        "job_link",
        "provenance_link",
        "batch_links",
        "created_at",
    )
    fields = readonly_fields

    @admin.display(description="size", ordering="size")
    def readable_size(self, computed: ComputedFile) -> str:
        return f"{filesizeformat(computed.size)} ({computed.size:,} bytes)"

    @admin.display(description="SHA-256")
    def short_sha256(self, computed: ComputedFile) -> str:
        return format_html('<span title="{}">{}…</span>', computed.sha256, computed.sha256[:12])

    @admin.display(description="download")
    def download(self, computed: ComputedFile) -> str:
        url = reverse("api:computedfile-download", args=[computed.pk])
        return format_html('<a href="{}">⬇ {}</a>', url, computed.filename)

    @admin.display(description="location")
    def location(self, computed: ComputedFile) -> str:
        from common.storage import permanent_storage

        return permanent_storage().location(computed.key)

    @admin.display(description="processor job")
    def job_link(self, computed: ComputedFile) -> str:
        return admin_link(computed.processor_job)

    @admin.display(description="provenance")
    def provenance_link(self, computed: ComputedFile) -> str:
        return admin_link(computed.provenance)


@admin.register(Provenance)
class ProvenanceAdmin(ReadOnlyAdmin):
    list_display = ("id", "processor_name", "processor_version", "processor_job", "ended_at")
    list_filter = ("processor_name",)
    readonly_fields = (
        "processor_name",
        "processor_version",
        "docker_image",
        "shown_tools",
        "shown_commands",
        "shown_inputs",
        "shown_parameters",
        "started_at",
        "ended_at",
        "job_link",
    )
    fields = readonly_fields
    shown_tools = redacted("tools")
    shown_inputs = redacted("inputs")
    shown_parameters = redacted("parameters")

    @admin.display(description="commands")
    def shown_commands(self, provenance: Provenance) -> str:
        """As the shell lines that were run (secrets masked)."""
        return shell_lines(redact_data(provenance.commands))

    @admin.display(description="processor job")
    def job_link(self, provenance: Provenance) -> str:
        return admin_link(provenance.processor_job)


@admin.register(TranscriptomeIndex)
class TranscriptomeIndexAdmin(ReadOnlyAdmin):
    list_display = (
        "organism",
        "length",
        "k",
        "source_release",
        "assembly",
        "salmon_version",
        "created_at",
    )
    list_filter = ("length", "source_release")
    search_fields = ("organism__scientific_name", "assembly")
    readonly_fields = (
        "organism",
        "batch",
        "length",
        "k",
        "source_release",
        "assembly",
        "salmon_version",
        "file_link",
        "created_at",
    )
    fields = readonly_fields

    @admin.display(description="index file")
    def file_link(self, index: TranscriptomeIndex) -> str:
        return admin_link(index.computed_file)
