"""How the API shows the refinery's data."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.reverse import reverse

from common.models import (
    Batch,
    ComputedFile,
    DownloaderJob,
    Experiment,
    Organism,
    ProcessorJob,
    Provenance,
    SurveyJob,
    TranscriptomeIndex,
)
from common.secrets import redact_data

JOB_FIELDS = [
    "id", "state", "attempt", "created_at", "dispatched_at", "start_time", "end_time",
    "duration", "duration_s", "heartbeat_at", "worker_id", "worker_version", "failure_reason",
    "no_retry", "interrupted", "exit_code", "retried", "retried_job", "given_up_at",
    "num_retries", "ram_mb", "dispatch_id",
]  # fmt: skip


class JobFields(serializers.Serializer):
    """What every job kind shows beyond its columns, in the CLI's words: `attempt`
    counts from 1 (`jobs list`'s TRY), `duration` reads as in the admin."""

    attempt = serializers.SerializerMethodField()
    duration = serializers.SerializerMethodField()
    duration_s = serializers.SerializerMethodField()

    def get_attempt(self, job) -> int:
        return job.num_retries + 1

    def get_duration(self, job) -> str | None:
        from foreman.cli_tables import span

        return span(job.duration) if job.duration else None

    def get_duration_s(self, job) -> float | None:
        return round(job.duration.total_seconds(), 3) if job.duration else None


def labelled(field: str):
    """A choice column's human label, beside its name."""
    return serializers.CharField(source=f"get_{field}_display", read_only=True)


class Redacted:
    """A serializer whose `redacted_fields` (text that came from outside: a source's
    answers, a tool's error, a command line) pass through the refinery's secret
    masking on their way out, rows stored before credentials were stripped too."""

    redacted_fields: tuple[str, ...] = ()

    def to_representation(self, instance):
        data = super().to_representation(instance)
        for name in self.redacted_fields:
            if name in data:
                data[name] = redact_data(data[name])
        return data


class OrganismSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organism
        fields = ["id", "scientific_name", "taxonomy_id"]


class ProvenanceSerializer(Redacted, serializers.ModelSerializer):
    redacted_fields = ("tools", "commands", "inputs", "parameters")

    class Meta:
        model = Provenance
        fields = [
            "processor_name", "processor_version", "docker_image", "tools", "commands", "inputs",
            "parameters", "started_at", "ended_at", "processor_job",
        ]  # fmt: skip


class ComputedFileSerializer(serializers.ModelSerializer):
    location = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()
    provenance = ProvenanceSerializer(read_only=True)

    class Meta:
        model = ComputedFile
        fields = [
            "id", "filename", "format", "size", "sha256", "location", "download_url",
            "processor_job", "batches", "provenance", "created_at",
        ]  # fmt: skip

    def get_download_url(self, computed: ComputedFile) -> str:
        """Where to fetch the file (authenticated, unless results are public)."""
        return reverse(
            "api:computedfile-download", args=[computed.pk], request=self.context.get("request")
        )

    def get_location(self, computed: ComputedFile) -> str:
        from common.storage import permanent_storage

        return permanent_storage().location(computed.key)


class TranscriptomeIndexSerializer(serializers.ModelSerializer):
    organism = OrganismSerializer(read_only=True)
    file = ComputedFileSerializer(source="computed_file", read_only=True)

    class Meta:
        model = TranscriptomeIndex
        fields = [
            "id", "organism", "length", "k", "source_release", "assembly", "salmon_version",
            "batch", "file", "created_at",
        ]  # fmt: skip


class BatchSerializer(Redacted, serializers.ModelSerializer):
    organism = serializers.StringRelatedField()
    redacted_fields = ("metadata",)

    class Meta:
        model = Batch
        fields = [
            "id", "source", "accession", "variant", "organism", "pipeline_required", "status",
            "metadata", "created_at", "updated_at",
        ]  # fmt: skip


class SurveyJobSerializer(Redacted, JobFields, serializers.ModelSerializer):
    redacted_fields = ("failure_reason", "parameters")
    source_label = labelled("source")

    class Meta:
        model = SurveyJob
        fields = [*JOB_FIELDS, "source", "source_label", "parameters"]


class DownloaderJobSerializer(Redacted, JobFields, serializers.ModelSerializer):
    redacted_fields = ("failure_reason",)
    downloader_task_label = labelled("downloader_task")

    class Meta:
        model = DownloaderJob
        fields = [*JOB_FIELDS, "downloader_task", "downloader_task_label", "batches"]


class ProcessorJobSerializer(Redacted, JobFields, serializers.ModelSerializer):
    redacted_fields = ("failure_reason",)
    pipeline_label = labelled("pipeline")

    class Meta:
        model = ProcessorJob
        fields = [*JOB_FIELDS, "pipeline", "pipeline_label", "batches"]


class ExperimentSerializer(serializers.ModelSerializer):
    samples = serializers.SlugRelatedField(slug_field="accession", many=True, read_only=True)

    class Meta:
        model = Experiment
        fields = ["id", "accession", "alternate_accession", "title", "samples", "created_at"]
