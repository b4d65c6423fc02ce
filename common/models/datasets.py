"""Datasets: gene-by-sample matrices of quantified RNA-seq samples, asked for
through the API and built by a processor job (pipeline `dataset_matrix`)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.functional import cached_property

from common.models.jobs import JobState


class DatasetValue(models.TextChoices):
    COUNTS = "counts", "estimated read counts"
    TPM = "tpm", "transcripts per million"


class DatasetState(models.TextChoices):
    QUEUED = "queued", "queued"
    BUILDING = "building", "building"
    READY = "ready", "ready"
    RETRYING = "retrying", "failed, will be retried"
    FAILED = "failed", "failed"


class Dataset(models.Model):
    """One organism's samples, as a matrix of one value. Its id is a UUID: a
    dataset is read by whoever holds its id, so ids must not be guessable."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organism = models.ForeignKey(
        "common.Organism", on_delete=models.PROTECT, related_name="datasets"
    )
    value = models.CharField(max_length=8, choices=DatasetValue.choices)
    samples = models.ManyToManyField("common.Sample", related_name="datasets")
    requested = models.JSONField(
        default=dict, help_text='what was asked for: {"samples": [...], "experiments": [...]}'
    )
    batch = models.OneToOneField(
        "common.Batch",
        on_delete=models.PROTECT,
        related_name="dataset",
        help_text="the batch its processor job builds",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="datasets",
    )
    matrix_file = models.ForeignKey(
        "common.ComputedFile", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    parquet_file = models.ForeignKey(
        "common.ComputedFile", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    genes = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"dataset {self.id} ({self.organism}, {self.value})"

    @cached_property
    def latest_job(self):
        """The latest attempt of its processor job (read once per instance)."""
        from common.models.job_kinds import ProcessorJob

        return ProcessorJob.objects.filter(batches=self.batch_id).order_by("-id").first()

    @property
    def state(self) -> str:
        """Where its build is, from the latest attempt of its processor job."""
        job = self.latest_job
        if job is None or job.state in (JobState.CREATED, JobState.QUEUED):
            return DatasetState.QUEUED
        if job.state == JobState.RUNNING:
            return DatasetState.BUILDING
        if job.state == JobState.SUCCEEDED:
            return DatasetState.READY
        return DatasetState.FAILED if job.given_up_at else DatasetState.RETRYING

    @property
    def failure_reason(self) -> str:
        job = self.latest_job
        return job.failure_reason if job is not None and job.state == JobState.FAILED else ""
