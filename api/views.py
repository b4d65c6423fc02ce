"""The REST API: read-only views of organisms, batches, results and job history,
filtered by query parameters and paged (`?limit=&offset=`)."""

from __future__ import annotations

from django.db.models import Count
from django.utils.dateparse import parse_datetime
from rest_framework import viewsets
from rest_framework.decorators import api_view
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from api import serializers
from common.models import (
    JOB_MODELS,
    Batch,
    ComputedFile,
    DownloaderJob,
    Organism,
    ProcessorJob,
    SurveyJob,
    TranscriptomeIndex,
)


class FilteredViewSet(viewsets.ReadOnlyModelViewSet):
    """Exact-match filters named in `filters` (query parameter -> field lookup)."""

    filters: dict[str, str] = {}

    def get_queryset(self):
        queryset = super().get_queryset()
        for parameter, lookup in self.filters.items():
            value = self.request.query_params.get(parameter)
            if value not in (None, ""):
                queryset = queryset.filter(**{lookup: value})
        since = self.request.query_params.get("since")
        if since:
            moment = parse_datetime(since) or parse_datetime(f"{since}T00:00:00+00:00")
            if moment is None:
                raise ValidationError({"since": f"not a date or time: {since!r}"})
            queryset = queryset.filter(created_at__gte=moment)
        return queryset


class OrganismViewSet(FilteredViewSet):
    """Species the refinery knows."""

    queryset = Organism.objects.all()
    serializer_class = serializers.OrganismSerializer
    filters = {"name": "scientific_name__iexact", "taxonomy_id": "taxonomy_id"}


class TranscriptomeIndexViewSet(FilteredViewSet):
    """Salmon transcriptome indices with their files and provenance."""

    queryset = TranscriptomeIndex.objects.select_related(
        "organism", "computed_file__provenance"
    ).order_by("-created_at")
    serializer_class = serializers.TranscriptomeIndexSerializer
    filters = {
        "organism": "organism__scientific_name__iexact",
        "length": "length",
        "release": "source_release",
    }


class ComputedFileViewSet(FilteredViewSet):
    """Every result in permanent storage."""

    queryset = ComputedFile.objects.select_related("provenance").prefetch_related("batches")
    serializer_class = serializers.ComputedFileSerializer
    filters = {"format": "format", "processor_job": "processor_job"}


class BatchViewSet(FilteredViewSet):
    """Units of data to refine."""

    queryset = Batch.objects.select_related("organism")
    serializer_class = serializers.BatchSerializer
    filters = {
        "source": "source",
        "status": "status",
        "accession": "accession",
        "pipeline": "pipeline_required",
    }


JOB_FILTERS = {"state": "state"}


class SurveyJobViewSet(FilteredViewSet):
    queryset = SurveyJob.objects.all()
    serializer_class = serializers.SurveyJobSerializer
    filters = {**JOB_FILTERS, "source": "source"}


class DownloaderJobViewSet(FilteredViewSet):
    queryset = DownloaderJob.objects.prefetch_related("batches")
    serializer_class = serializers.DownloaderJobSerializer
    filters = {**JOB_FILTERS, "task": "downloader_task"}


class ProcessorJobViewSet(FilteredViewSet):
    queryset = ProcessorJob.objects.prefetch_related("batches")
    serializer_class = serializers.ProcessorJobSerializer
    filters = {**JOB_FILTERS, "pipeline": "pipeline"}


@api_view(["GET"])
def stats(request: Request) -> Response:
    """Jobs by kind and state, batches by status, and results: what the refinery holds."""
    jobs = {
        kind: {
            row["state"]: row["n"] for row in model.objects.values("state").annotate(n=Count("id"))
        }
        for kind, model in JOB_MODELS.items()
    }
    batches = {
        row["status"]: row["n"] for row in Batch.objects.values("status").annotate(n=Count("id"))
    }
    return Response(
        {
            "jobs": jobs,
            "batches": batches,
            "organisms": Organism.objects.count(),
            "transcriptome_indices": TranscriptomeIndex.objects.count(),
            "results": ComputedFile.objects.count(),
        }
    )


@api_view(["GET"])
def api_root(request: Request) -> Response:
    """What the API serves."""
    names = [
        "organism", "transcriptomeindex", "computedfile", "batch", "surveyjob",
        "downloaderjob", "processorjob",
    ]  # fmt: skip
    links = {name: reverse(f"api:{name}-list", request=request) for name in names}
    links["stats"] = reverse("api:stats", request=request)
    return Response({"name": "Data Refinery", "version": 1, "endpoints": links})
