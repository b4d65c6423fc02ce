"""Public RNA-seq metadata: studies (experiments, as refine.bio calls them), their
samples, and the runs a survey could not use."""

from django.db import models

from common.models.lengths import LengthChecked


class Experiment(LengthChecked):
    """A study (ENA `PRJNA…`/`PRJEB…`, with its `SRP…`/`ERP…` alias)."""

    source = models.CharField(max_length=32)
    accession = models.CharField(max_length=64, unique=True)
    alternate_accession = models.CharField(max_length=64, blank=True, default="")
    title = models.CharField(max_length=1024, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["accession"]

    def __str__(self) -> str:
        return self.accession


class Sample(LengthChecked):
    """A biological sample (ENA `SAMN…`/`SAMEA…`, alias `SRS…`/`ERS…`); its runs
    are batches of the salmon_quant pipeline."""

    source = models.CharField(max_length=32)
    accession = models.CharField(max_length=64, unique=True)
    alternate_accession = models.CharField(max_length=64, blank=True, default="")
    title = models.CharField(max_length=1024, blank=True, default="")
    organism = models.ForeignKey(
        "common.Organism", null=True, blank=True, on_delete=models.PROTECT, related_name="samples"
    )
    platform = models.CharField(max_length=64, blank=True, default="")
    attributes = models.JSONField(default=dict, blank=True)
    experiments = models.ManyToManyField(Experiment, related_name="samples")
    batches = models.ManyToManyField("common.Batch", related_name="samples")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["accession"]

    def __str__(self) -> str:
        return self.accession


class SkippedRun(LengthChecked):
    """A run a survey found and left out, and why (not RNA-Seq, no FASTQ, …)."""

    survey_job = models.ForeignKey(
        "common.SurveyJob", on_delete=models.CASCADE, related_name="skipped_runs"
    )
    accession = models.CharField(max_length=64)
    reason = models.CharField(max_length=1024)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.accession}: {self.reason}"


class Quantification(models.Model):
    """A run's gene-level expression from salmon_quant, compact: one row per run,
    the genes' ids, counts and TPMs as three parallel arrays."""

    batch = models.OneToOneField(
        "common.Batch", on_delete=models.PROTECT, related_name="quantification"
    )
    processor_job = models.ForeignKey(
        "common.ProcessorJob", on_delete=models.PROTECT, related_name="quantifications"
    )
    transcriptome_index = models.ForeignKey(
        "common.TranscriptomeIndex", on_delete=models.PROTECT, related_name="quantifications"
    )
    mapping_rate = models.FloatField(help_text="the share of reads mapped, 0..1")
    library_type = models.CharField(max_length=16, blank=True, default="")
    reads_processed = models.BigIntegerField()
    low_quality = models.BooleanField(default=False)
    gene_ids = models.JSONField(default=list)
    counts = models.JSONField(default=list)
    tpm = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"quantification of {self.batch}"
