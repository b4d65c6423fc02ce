from django.db import models

from common.models.choices import ProcessorPipeline, SurveySource
from common.models.lengths import LengthChecked


class BatchStatus(models.TextChoices):
    NEW = "new", "new"
    DOWNLOADED = "downloaded", "downloaded"
    PROCESSED = "processed", "processed"
    FAILED = "failed", "failed"


class Batch(LengthChecked):
    """One unit of data to refine, identified within its source by
    (accession, variant): for example a species' genome at one k-mer size."""

    source = models.CharField(max_length=32, choices=SurveySource.choices)
    accession = models.CharField(max_length=255)
    variant = models.CharField(
        max_length=64, blank=True, default="", help_text="e.g. the k-mer size"
    )
    organism = models.ForeignKey(
        "common.Organism", null=True, blank=True, on_delete=models.PROTECT, related_name="batches"
    )
    pipeline_required = models.CharField(max_length=64, choices=ProcessorPipeline.choices)
    status = models.CharField(max_length=16, choices=BatchStatus.choices, default=BatchStatus.NEW)
    metadata = models.JSONField(default=dict, blank=True)
    sequencing_run = models.ForeignKey(
        "common.SequencingRun",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="batches",
        help_text="the lab's own run this batch comes from",
    )
    survey_job = models.ForeignKey(
        "common.SurveyJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="batches"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "batches"
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "accession", "variant"], name="batch_natural_key"
            )
        ]
        indexes = [models.Index(fields=["status", "updated_at"])]

    def __str__(self) -> str:
        variant = f" [{self.variant}]" if self.variant else ""
        return f"{self.source}:{self.accession}{variant}"

    def set_status(self, status: str) -> None:
        type(self).objects.filter(pk=self.pk).update(status=status)
        self.status = status


class OriginalFile(LengthChecked):
    """A file a batch needs from its source. One file may serve several batches;
    it is downloaded once."""

    batches = models.ManyToManyField(Batch, related_name="original_files")
    source_url = models.CharField(max_length=2048, unique=True)
    filename = models.CharField(max_length=512)
    raw_format = models.CharField(max_length=32, blank=True, default="")
    expected_size = models.BigIntegerField(null=True, blank=True)
    expected_checksums = models.JSONField(
        default=dict, blank=True, help_text='known sums, e.g. {"bsd_sum": "1234 56"}'
    )
    size = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True, default="")
    temp_key = models.CharField(max_length=1024, blank=True, default="")
    is_downloaded = models.BooleanField(default=False)
    downloaded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.filename

    def record_download(self, key: str, size: int, sha256: str) -> None:
        from django.utils import timezone

        self.temp_key, self.size, self.sha256 = key, size, sha256
        self.is_downloaded, self.downloaded_at = True, timezone.now()
        self.save(update_fields=["temp_key", "size", "sha256", "is_downloaded", "downloaded_at"])

    def forget_download(self) -> None:
        """The file left temporary storage."""
        self.temp_key, self.is_downloaded = "", False
        self.save(update_fields=["temp_key", "is_downloaded"])
