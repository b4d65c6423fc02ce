"""The three kinds of job, the indexes their queries use, and how to find a
kind's model by name."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from common.models.choices import DownloaderTask, JobKind, ProcessorPipeline, SurveySource
from common.models.jobs import UNFINISHED, Job, JobState


def job_indexes(prefix: str) -> list[models.Index]:
    """The indexes the dispatcher and the Foreman's queries use: every query they
    make filters unfinished jobs, or failed jobs nobody has handled yet, so the
    indexes are partial and stay small when millions of jobs have finished."""
    return [
        models.Index(
            fields=["state", "created_at"],
            name=f"{prefix}_unfinished",
            condition=Q(state__in=UNFINISHED),
        ),
        models.Index(
            fields=["end_time"],
            name=f"{prefix}_awaiting_retry",
            condition=Q(state=JobState.FAILED, retried=False, no_retry=False),
        ),
        models.Index(fields=["created_at"], name=f"{prefix}_created"),
        # The Foreman's failed-job pass: failed attempts nobody retried or gave up on.
        models.Index(
            fields=["end_time"],
            name=f"{prefix}_unsettled",
            condition=Q(state=JobState.FAILED, retried=False, given_up_at__isnull=True),
        ),
        # `jobs retry --failed-since`: every failed attempt without a later one.
        models.Index(
            fields=["end_time"],
            name=f"{prefix}_failed_unretried",
            condition=Q(state=JobState.FAILED, retried=False),
        ),
    ]


class SurveyJob(Job):
    kind = JobKind.SURVEY

    source = models.CharField(max_length=32, choices=SurveySource.choices)
    parameters = models.JSONField(default=dict, blank=True)

    class Meta(Job.Meta):
        indexes = job_indexes("survey")

    def new_attempt_fields(self) -> dict:
        return {
            **super().new_attempt_fields(),
            "source": self.source,
            "parameters": self.parameters,
        }


class DownloaderJob(Job):
    kind = JobKind.DOWNLOADER

    downloader_task = models.CharField(max_length=32, choices=DownloaderTask.choices)
    batches = models.ManyToManyField("common.Batch", related_name="downloader_jobs")

    class Meta(Job.Meta):
        indexes = job_indexes("downloader")

    def new_attempt_fields(self) -> dict:
        return {**super().new_attempt_fields(), "downloader_task": self.downloader_task}

    def run_rule_name(self) -> str:
        return self.downloader_task

    def copy_relations_from(self, other: Job) -> None:
        self.batches.set(other.batches.all())


class ProcessorJob(Job):
    kind = JobKind.PROCESSOR

    pipeline = models.CharField(max_length=64, choices=ProcessorPipeline.choices)
    batches = models.ManyToManyField("common.Batch", related_name="processor_jobs")

    class Meta(Job.Meta):
        indexes = job_indexes("processor")

    def new_attempt_fields(self) -> dict:
        return {**super().new_attempt_fields(), "pipeline": self.pipeline}

    def run_rule_name(self) -> str:
        return self.pipeline

    def copy_relations_from(self, other: Job) -> None:
        self.batches.set(other.batches.all())


JOB_MODELS: dict[str, type[Job]] = {
    JobKind.SURVEY: SurveyJob,
    JobKind.DOWNLOADER: DownloaderJob,
    JobKind.PROCESSOR: ProcessorJob,
}


def job_model(kind: str) -> type[Job]:
    """The model for a job kind ("survey", "downloader" or "processor")."""
    try:
        return JOB_MODELS[kind]
    except KeyError:
        raise ValueError(f"unknown job kind {kind!r}: use one of {', '.join(JOB_MODELS)}") from None
