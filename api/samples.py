"""/api/samples/: RNA-seq samples with their studies and runs, each run with its
quantification's status and metrics.

A page's studies and runs are read in three flat queries for the whole page
(values, not model instances) and attached to its samples: Django's
prefetch_related builds a queryset per sample and relation, which cost ten
times the queries' own time on a page of 100 (bench/api_datasets.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from rest_framework import serializers

from common.models import ProcessorJob, ProcessorPipeline, Sample

NOT_STARTED = "not started"


def attach_studies_and_runs(samples: Iterable[Sample]) -> list[Sample]:
    """Give each sample `page_studies` (accessions) and `page_runs` (dicts), in
    three queries for all of them."""
    samples = list(samples)
    ids = [sample.pk for sample in samples]
    studies: dict[int, list[str]] = defaultdict(list)
    for sample_id, accession in (
        Sample.experiments.through.objects.filter(sample_id__in=ids)
        .order_by("experiment__accession")
        .values_list("sample_id", "experiment__accession")
    ):
        studies[sample_id].append(accession)
    runs: dict[int, list[dict]] = defaultdict(list)
    unquantified: dict[int, dict] = {}
    rows = (
        Sample.batches.through.objects.filter(sample_id__in=ids)
        .order_by("batch__accession")
        .values_list(
            "sample_id", "batch_id", "batch__accession", "batch__status",
            "batch__quantification__id", "batch__quantification__mapping_rate",
            "batch__quantification__library_type", "batch__quantification__reads_processed",
            "batch__quantification__low_quality", "batch__quantification__gene_set__size",
            "batch__quantification__processor_job_id",
        )
    )  # fmt: skip
    for (sample_id, batch_id, accession, status, quantified, rate, library, reads, low, genes,
         job_id) in rows:  # fmt: skip
        if quantified is None:
            quantification = {"status": NOT_STARTED}
            unquantified[batch_id] = quantification
        else:
            quantification = {
                "status": "low quality" if low else "quantified",
                "mapping_rate": rate,
                "library_type": library,
                "reads_processed": reads,
                "low_quality": low,
                "genes": genes,
                "processor_job": job_id,
            }
        runs[sample_id].append(
            {"accession": accession, "status": status, "quantification": quantification}
        )
    if unquantified:  # the state of each unquantified run's latest salmon_quant job
        latest = (
            ProcessorJob.batches.through.objects.filter(
                batch_id__in=list(unquantified),
                processorjob__pipeline=ProcessorPipeline.SALMON_QUANT,
            )
            .order_by("batch_id", "processorjob_id")
            .values_list("batch_id", "processorjob__state")
        )
        for batch_id, state in latest:
            unquantified[batch_id]["status"] = state
    for sample in samples:
        sample.page_studies = studies[sample.pk]
        sample.page_runs = runs[sample.pk]
    return samples


class SampleSerializer(serializers.ModelSerializer):
    organism = serializers.StringRelatedField()
    studies = serializers.SerializerMethodField()
    runs = serializers.SerializerMethodField()

    class Meta:
        model = Sample
        fields = [
            "id", "accession", "alternate_accession", "title", "organism", "platform",
            "attributes", "studies", "runs", "created_at",
        ]  # fmt: skip

    def get_studies(self, sample: Sample) -> list[str]:
        if not hasattr(sample, "page_studies"):
            attach_studies_and_runs([sample])
        return sample.page_studies

    def get_runs(self, sample: Sample) -> list[dict]:
        """Each run: `accession`, `status`, and its `quantification` (`status`, and
        once quantified `mapping_rate`, `library_type`, `reads_processed`,
        `low_quality`, `genes`, `processor_job`)."""
        if not hasattr(sample, "page_runs"):
            attach_studies_and_runs([sample])
        return sample.page_runs
