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
    "id", "state", "created_at", "dispatched_at", "start_time", "end_time", "heartbeat_at",
    "worker_id", "worker_version", "failure_reason", "no_retry", "num_retries", "retried_job",
    "ram_mb", "dispatch_id",
]  # fmt: skip


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


class SurveyJobSerializer(Redacted, serializers.ModelSerializer):
    redacted_fields = ("failure_reason", "parameters")

    class Meta:
        model = SurveyJob
        fields = [*JOB_FIELDS, "source", "parameters"]


class DownloaderJobSerializer(Redacted, serializers.ModelSerializer):
    redacted_fields = ("failure_reason",)

    class Meta:
        model = DownloaderJob
        fields = [*JOB_FIELDS, "downloader_task", "batches"]


class ProcessorJobSerializer(Redacted, serializers.ModelSerializer):
    redacted_fields = ("failure_reason",)

    class Meta:
        model = ProcessorJob
        fields = [*JOB_FIELDS, "pipeline", "batches"]


class ExperimentSerializer(serializers.ModelSerializer):
    samples = serializers.SlugRelatedField(slug_field="accession", many=True, read_only=True)

    class Meta:
        model = Experiment
        fields = ["id", "accession", "alternate_accession", "title", "samples", "created_at"]
