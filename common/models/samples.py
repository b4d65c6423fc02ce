"""Public RNA-seq metadata: studies (experiments, as refine.bio calls them), their
samples, and the runs a survey could not use."""

from __future__ import annotations

import hashlib

from django.db import IntegrityError, models, transaction

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


class GeneSet(models.Model):
    """The genes a transcriptome index quantifies, in the order its
    quantifications store their values: one row per distinct list of genes, so
    a quantification stores only numbers."""

    sha256 = models.CharField(max_length=64, unique=True, help_text="of the ids, one per line")
    gene_ids = models.JSONField(default=list)
    size = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.size} genes ({self.sha256[:12]})"

    @classmethod
    def for_genes(cls, gene_ids: list[str]) -> GeneSet:
        digest = hashlib.sha256("\n".join(gene_ids).encode()).hexdigest()
        found = cls.objects.filter(sha256=digest).first()
        if found is not None:
            return found
        try:
            with transaction.atomic():
                return cls.objects.create(sha256=digest, gene_ids=gene_ids, size=len(gene_ids))
        except IntegrityError:  # another job recorded the same genes first
            return cls.objects.get(sha256=digest)


def pack_values(values) -> bytes:
    """Values as little-endian float64, the form quantifications store. (numpy is
    loaded here, not when the models are: most processes never need it.)"""
    import numpy as np

    return np.asarray(values, dtype="<f8").tobytes()


def unpack_values(data: bytes | memoryview):
    """The float64 array `pack_values` made."""
    import numpy as np

    return np.frombuffer(bytes(data), dtype="<f8")


class Quantification(models.Model):
    """A run's gene-level expression from salmon_quant, compact: one row per run,
    its counts and TPMs as float64 arrays (8 bytes a gene) in the order of its
    gene set's ids. Build one with `Quantification.of_genes`."""

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
    gene_set = models.ForeignKey(GeneSet, on_delete=models.PROTECT, related_name="quantifications")
    count_values = models.BinaryField(help_text="float64 little-endian, one per gene")
    tpm_values = models.BinaryField(help_text="float64 little-endian, one per gene")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"quantification of {self.batch}"

    @classmethod
    def of_genes(
        cls, gene_ids: list[str], counts: list[float], tpm: list[float], **fields
    ) -> Quantification:
        """An unsaved row for these genes' values (the three lists in one order)."""
        if not len(gene_ids) == len(counts) == len(tpm):
            raise ValueError(
                f"{len(gene_ids)} genes, {len(counts)} counts and {len(tpm)} TPMs: "
                "one of each per gene"
            )
        return cls(
            gene_set=GeneSet.for_genes(list(gene_ids)),
            count_values=pack_values(counts),
            tpm_values=pack_values(tpm),
            **fields,
        )

    @property
    def gene_ids(self) -> list[str]:
        return self.gene_set.gene_ids

    @property
    def counts(self) -> list[float]:
        return unpack_values(self.count_values).tolist()

    @property
    def tpm(self) -> list[float]:
        return unpack_values(self.tpm_values).tolist()
