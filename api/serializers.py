"""How the API shows the refinery's data."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.reverse import reverse

from common.models import (
    Batch,
    ComputedFile,
    DemultiplexStat,
    DownloaderJob,
    Experiment,
    Job,
    Organism,
    ProcessorJob,
    Provenance,
    RunStateChange,
    SequencingRun,
    SurveyJob,
    TranscriptomeIndex,
)
from common.secrets import redact_data
from foreman.run_archives import archive_of, storage_url

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


# --- the lab's sequencing runs ----------------------------------------------------------


class JobRefSerializer(serializers.Serializer):
    kind = serializers.CharField()
    id = serializers.IntegerField()
    url = serializers.URLField(help_text="the job under /api/jobs/")


class RunStateChangeSerializer(Redacted, serializers.ModelSerializer):
    """One change of a run's state: when (with its time zone), from what, to what,
    why, and the job that caused it (none for what a survey saw)."""

    redacted_fields = ("reason",)
    job = serializers.SerializerMethodField()

    class Meta:
        model = RunStateChange
        fields = ["old_state", "new_state", "reason", "at", "job"]

    @extend_schema_field(JobRefSerializer(allow_null=True))
    def get_job(self, change: RunStateChange) -> dict | None:
        if change.job_id is None:
            return None
        path = reverse(f"api:{change.job_kind}job-detail", args=[change.job_id])
        url = self.context["request"].build_absolute_uri(path)
        return {"kind": change.job_kind, "id": change.job_id, "url": url}


class RunJobSerializer(Redacted, serializers.Serializer):
    """A batch's job: the latest attempt of one chain, and how many attempts it took."""

    redacted_fields = ("failure_reason",)
    kind = serializers.CharField()
    id = serializers.IntegerField()
    name = serializers.CharField(help_text="the downloader task or processor pipeline")
    state = serializers.CharField()
    attempts = serializers.IntegerField(help_text="attempts in this job's chain, this one included")
    attempt_ids = serializers.ListField(child=serializers.IntegerField(), help_text="first first")
    failure_reason = serializers.CharField()
    given_up = serializers.BooleanField(help_text="failed, and the refinery will not retry it")
    created_at = serializers.DateTimeField()
    start_time = serializers.DateTimeField(allow_null=True)
    end_time = serializers.DateTimeField(allow_null=True)


def latest_attempts(jobs: list[Job]) -> list[dict]:
    """Each chain of attempts among `jobs` (every attempt of a batch's jobs of one
    kind: retries keep their batches), as its latest attempt and the chain's ids."""
    by_id = {job.pk: job for job in jobs}
    chains = []
    for job in jobs:
        if job.retried:
            continue
        chain, attempt = [job.pk], job
        while attempt.retried_job_id in by_id:
            attempt = by_id[attempt.retried_job_id]
            chain.insert(0, attempt.pk)
        chains.append(
            {
                "kind": job.kind,
                "id": job.pk,
                "name": job.run_rule_name(),
                "state": job.state,
                "attempts": len(chain),
                "attempt_ids": chain,
                "failure_reason": job.failure_reason,
                "given_up": job.given_up_at is not None,
                "created_at": job.created_at,
                "start_time": job.start_time,
                "end_time": job.end_time,
            }
        )
    return sorted(chains, key=lambda c: (c["created_at"], c["kind"], c["id"]))


class RunResultSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = ComputedFile
        fields = ["id", "filename", "format", "size", "sha256", "url", "processor_job",
                  "created_at"]  # fmt: skip

    def get_url(self, computed: ComputedFile) -> str:
        return storage_url(computed.key)


class RunBatchSerializer(Redacted, serializers.ModelSerializer):
    redacted_fields = ("metadata",)
    jobs = serializers.SerializerMethodField()
    results = serializers.SerializerMethodField()

    class Meta:
        model = Batch
        fields = ["id", "accession", "variant", "pipeline_required", "status", "metadata",
                  "jobs", "results"]  # fmt: skip

    @extend_schema_field(RunJobSerializer(many=True))
    def get_jobs(self, batch: Batch) -> list[dict]:
        chains = [
            *latest_attempts(list(batch.downloader_jobs.all())),
            *latest_attempts(list(batch.processor_jobs.all())),
        ]
        chains.sort(key=lambda c: (c["created_at"], c["kind"], c["id"]))
        return RunJobSerializer(chains, many=True).data

    @extend_schema_field(RunResultSerializer(many=True))
    def get_results(self, batch: Batch) -> list[dict]:
        files = sorted(batch.computed_files.all(), key=lambda f: f.pk)
        return RunResultSerializer(files, many=True).data


class RunArchiveSerializer(serializers.Serializer):
    url = serializers.CharField(help_text="s3://bucket/key, or a file:// URL for local storage")
    filename = serializers.CharField()
    size = serializers.IntegerField()
    sha256 = serializers.CharField()
    result = serializers.IntegerField(help_text="its id under /api/results/")
    download_url = serializers.URLField(help_text="where to fetch it (api/downloads.py)")
    processor_job = serializers.IntegerField()


class RunLinksSerializer(serializers.Serializer):
    api = serializers.URLField()
    admin = serializers.URLField()


RUN_FIELDS = [
    "run_id", "platform", "flowcell", "instrument_id", "instrument_type", "run_number",
    "run_date", "location", "lanes", "state", "state_reason", "state_changed_at",
]  # fmt: skip


class SequencingRunSerializer(Redacted, serializers.ModelSerializer):
    """A run in a list: what it is and the state it is in."""

    redacted_fields = ("state_reason",)
    url = serializers.HyperlinkedIdentityField(
        view_name="api:sequencingrun-detail", lookup_field="run_id"
    )

    class Meta:
        model = SequencingRun
        fields = [*RUN_FIELDS, "url"]


class DemultiplexStatSerializer(serializers.ModelSerializer):
    percent_q30 = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = DemultiplexStat
        fields = [
            "lane", "sample_id", "sample_project", "index", "reads", "perfect_index_reads",
            "one_mismatch_index_reads", "percent_of_lane", "yield_bases", "yield_q30",
            "percent_q30", "mean_quality", "processor_job",
        ]  # fmt: skip


class SequencingRunDetailSerializer(SequencingRunSerializer):
    """One run with its history, batches, jobs, results, archive and the figures
    of its latest demultiplexing."""

    redacted_fields = ("state_reason", "metadata")
    history = RunStateChangeSerializer(source="state_changes", many=True, read_only=True)
    batches = RunBatchSerializer(many=True, read_only=True)
    archive = serializers.SerializerMethodField()
    demultiplexing = serializers.SerializerMethodField()
    links = serializers.SerializerMethodField()

    class Meta:
        model = SequencingRun
        fields = [
            *RUN_FIELDS, "read_structure", "tiles", "sample_sheet", "sample_sheet_sha256",
            "metadata", "survey_job", "history", "batches", "archive", "demultiplexing",
            "links", "url",
        ]  # fmt: skip

    @extend_schema_field(DemultiplexStatSerializer(many=True))
    def get_demultiplexing(self, run: SequencingRun) -> list[dict]:
        """Reads, index matches, yield and Q30 per lane and sample, from the latest
        bcl2fastq job ([] before one succeeded)."""
        return DemultiplexStatSerializer(run.latest_demultiplex_stats(), many=True).data

    @extend_schema_field(RunArchiveSerializer(allow_null=True))
    def get_archive(self, run: SequencingRun) -> dict | None:
        computed = archive_of(run)
        if computed is None:
            return None
        return {
            "url": storage_url(computed.key),
            "filename": computed.filename,
            "size": computed.size,
            "sha256": computed.sha256,
            "result": computed.pk,
            "download_url": reverse(
                "api:computedfile-download", args=[computed.pk], request=self.context.get("request")
            ),
            "processor_job": computed.processor_job_id,
        }

    @extend_schema_field(RunLinksSerializer)
    def get_links(self, run: SequencingRun) -> dict:
        request = self.context["request"]
        return {
            "api": request.build_absolute_uri(
                reverse("api:sequencingrun-detail", kwargs={"run_id": run.run_id})
            ),
            "admin": request.build_absolute_uri(
                reverse("admin:common_sequencingrun_change", args=[run.pk])
            ),
        }
