from django.db import models

from common.models.lengths import LengthChecked


class Provenance(LengthChecked):
    """What made a set of results: the processor, its tools, its commands, its
    inputs. A result without this record is not a result."""

    processor_job = models.OneToOneField(
        "common.ProcessorJob", on_delete=models.PROTECT, related_name="provenance"
    )
    processor_name = models.CharField(max_length=64)
    processor_version = models.CharField(max_length=64)
    docker_image = models.CharField(max_length=255, blank=True, default="")
    tools = models.JSONField(default=dict, help_text="external tool -> version")
    commands = models.JSONField(default=list, help_text="the commands run, as argument lists")
    inputs = models.JSONField(default=list, help_text="input files with their checksums")
    parameters = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.processor_name} {self.processor_version} (job {self.processor_job_id})"


class ComputedFile(LengthChecked):
    """A result in permanent storage."""

    key = models.CharField(max_length=1024, unique=True)
    filename = models.CharField(max_length=512)
    format = models.CharField(max_length=32)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    processor_job = models.ForeignKey(
        "common.ProcessorJob", on_delete=models.PROTECT, related_name="computed_files"
    )
    batches = models.ManyToManyField("common.Batch", related_name="computed_files")
    provenance = models.ForeignKey(Provenance, on_delete=models.PROTECT, related_name="files")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.filename

    @property
    def url(self) -> str:
        from common.storage import permanent_storage

        return permanent_storage().url(self.key)


class TranscriptomeIndex(LengthChecked):
    """A Salmon transcriptome index of one organism's Ensembl annotation."""

    class Length(models.TextChoices):
        LONG = "long", "long reads (k=31)"
        SHORT = "short", "short reads (k=23)"

    organism = models.ForeignKey(
        "common.Organism", on_delete=models.PROTECT, related_name="transcriptome_indices"
    )
    batch = models.ForeignKey(
        "common.Batch", on_delete=models.PROTECT, related_name="transcriptome_indices"
    )
    length = models.CharField(max_length=8, choices=Length.choices)
    k = models.PositiveSmallIntegerField()
    source_release = models.CharField(max_length=32, help_text="the Ensembl release")
    assembly = models.CharField(max_length=128)
    salmon_version = models.CharField(max_length=64)
    computed_file = models.OneToOneField(
        ComputedFile, on_delete=models.PROTECT, related_name="transcriptome_index"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "transcriptome indices"
        ordering = ["organism__scientific_name", "length", "-created_at"]
        # A batch is one organism's release at one k: it has one index. A later job
        # for the same batch replaces the row (the older file stays, with its job).
        constraints = [
            models.UniqueConstraint(fields=["batch"], name="one_transcriptome_index_per_batch")
        ]

    def __str__(self) -> str:
        return f"{self.organism} {self.length} (k={self.k}, Ensembl {self.source_release})"
