"""The REST API: read-only views of organisms, batches, results and job history,
filtered by query parameters (api/filters.py) and paged (api/pagination.py)."""

from __future__ import annotations

from django.core.exceptions import MultipleObjectsReturned
from django.db.models import Count, F, Prefetch
from django.http import Http404
from django.urls import NoReverseMatch
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers as drf_serializers
from rest_framework import viewsets
from rest_framework.decorators import action, api_view
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from api import filters, serializers
from api.downloads import check_may_download, download_response
from api.samples import SampleSerializer, attach_studies_and_runs
from common.models import (
    JOB_MODELS,
    Batch,
    ComputedFile,
    DownloaderJob,
    Experiment,
    Organism,
    ProcessorJob,
    RunStateChange,
    Sample,
    SequencingRun,
    SurveyJob,
    TranscriptomeIndex,
)
from foreman import stats as foreman_stats


class ListViewSet(viewsets.ReadOnlyModelViewSet):
    """A list filtered by its `filterset_class`, and one row by id."""

    def get_object(self):
        try:
            return super().get_object()
        except Http404:  # its message names the model; an id that is no row is just that
            raise NotFound() from None


class OrganismViewSet(ListViewSet):
    """Species the refinery knows."""

    queryset = Organism.objects.all()
    serializer_class = serializers.OrganismSerializer
    filterset_class = filters.OrganismFilter


class SampleViewSet(ListViewSet):
    """RNA-seq samples, each run with its quantification's status and metrics."""

    queryset = Sample.objects.select_related("organism").order_by("accession")
    serializer_class = SampleSerializer
    filterset_class = filters.SampleFilter

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        return None if page is None else attach_studies_and_runs(page)


class ExperimentViewSet(ListViewSet):
    """Studies and their samples."""

    queryset = Experiment.objects.prefetch_related("samples").order_by("accession")
    serializer_class = serializers.ExperimentSerializer
    filterset_class = filters.ExperimentFilter


class TranscriptomeIndexViewSet(ListViewSet):
    """Salmon transcriptome indices with their files and provenance."""

    queryset = TranscriptomeIndex.objects.select_related(
        "organism", "computed_file__provenance"
    ).order_by("-created_at", "-id")
    serializer_class = serializers.TranscriptomeIndexSerializer
    filterset_class = filters.TranscriptomeIndexFilter


class ComputedFileViewSet(ListViewSet):
    """Every result in permanent storage."""

    queryset = ComputedFile.objects.select_related("provenance").prefetch_related("batches")
    serializer_class = serializers.ComputedFileSerializer
    filterset_class = filters.ComputedFileFilter

    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk: str | None = None):
        """The file: streamed from local storage, or a redirect to a presigned S3
        URL. Authenticated users only, unless REFINERY_PUBLIC_DOWNLOADS is set."""
        check_may_download(request)
        return download_response(self.get_object())


class BatchViewSet(ListViewSet):
    """Units of data to refine."""

    queryset = Batch.objects.select_related("organism")
    serializer_class = serializers.BatchSerializer
    filterset_class = filters.BatchFilter


class SurveyJobViewSet(ListViewSet):
    """Survey jobs: which source was surveyed, with what parameters, and how it went."""

    queryset = SurveyJob.objects.all()
    serializer_class = serializers.SurveyJobSerializer
    filterset_class = filters.SurveyJobFilter


class DownloaderJobViewSet(ListViewSet):
    """Downloader jobs: each batch's files fetched into temporary storage."""

    queryset = DownloaderJob.objects.prefetch_related("batches")
    serializer_class = serializers.DownloaderJobSerializer
    filterset_class = filters.DownloaderJobFilter


class ProcessorJobViewSet(ListViewSet):
    """Processor jobs: each pipeline run over its batches, with its attempts."""

    queryset = ProcessorJob.objects.prefetch_related("batches")
    serializer_class = serializers.ProcessorJobSerializer
    filterset_class = filters.ProcessorJobFilter


class SequencingRunViewSet(ListViewSet):
    """The lab's sequencing runs (Illumina run folders, Nanopore runs), newest first,
    each by its run id: its state with its history, its batches, their jobs and
    results, and its archive."""

    queryset = SequencingRun.objects.order_by(F("run_date").desc(nulls_last=True), "-id")
    serializer_class = serializers.SequencingRunSerializer
    filterset_class = filters.SequencingRunFilter
    lookup_field = "run_id"
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        if self.action != "retrieve":
            return self.queryset
        return self.queryset.prefetch_related(
            Prefetch("state_changes", RunStateChange.objects.order_by("at", "id")),
            "batches__downloader_jobs",
            "batches__processor_jobs",
            "batches__computed_files",
        )

    def get_serializer_class(self):
        if self.action == "retrieve":
            return serializers.SequencingRunDetailSerializer
        return self.serializer_class

    def get_object(self):
        try:
            return super().get_object()
        except MultipleObjectsReturned:  # an Illumina and a Nanopore run of the same id
            raise ValidationError(
                {"platform": "runs of several platforms have this id: say which, e.g. illumina"}
            ) from None


STATS_RESPONSE = inline_serializer(
    "Stats",
    {
        "jobs": drf_serializers.DictField(
            child=drf_serializers.DictField(child=drf_serializers.IntegerField()),
            help_text="kind -> state -> how many",
        ),
        "batches": drf_serializers.DictField(
            child=drf_serializers.IntegerField(), help_text="status -> how many"
        ),
        "organisms": drf_serializers.IntegerField(),
        "transcriptome_indices": drf_serializers.IntegerField(),
        "results": drf_serializers.IntegerField(),
        "overview": drf_serializers.JSONField(
            help_text="the admin overview's figures for the window: counts, "
            "finished_per_hour, runtimes, foreman, workers, queues, paused, recent_failures"
        ),
    },
)


@extend_schema(
    parameters=[
        OpenApiParameter(
            "window",
            OpenApiTypes.STR,
            enum=list(foreman_stats.WINDOWS),
            description=f"the overview's window (default {foreman_stats.DEFAULT_WINDOW})",
        )
    ],
    responses=STATS_RESPONSE,
)
@api_view(["GET"])
def stats(request: Request) -> Response:
    """Jobs by kind and state, batches by status, and results: what the refinery holds.
    With `overview`, the figures of the admin's overview page for `?window=` (1h,
    24h or 7d; 24h by default): counts per window, jobs finished per hour, runtimes
    per pipeline, the Foreman's health, workers, queues, pauses, recent failures."""
    try:
        window = foreman_stats.parse_window(request.query_params.get("window"))
    except foreman_stats.BadWindow as error:
        raise ValidationError({"window": str(error)}) from None
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
            "overview": foreman_stats.overview(window),
        }
    )


@extend_schema(
    responses=inline_serializer(
        "Root",
        {
            "name": drf_serializers.CharField(),
            "version": drf_serializers.IntegerField(),
            "endpoints": drf_serializers.DictField(child=drf_serializers.URLField()),
            "about": drf_serializers.DictField(child=drf_serializers.CharField()),
        },
    )
)
@api_view(["GET"])
def api_root(request: Request) -> Response:
    """What the API serves: each endpoint by its URL name (`organisms`,
    `jobs/processor`, …), with the list endpoints' descriptions under `about`."""
    from api.urls import router

    links, about = {}, {}
    for prefix, viewset, basename in router.registry:
        name = f"api:{basename}-list"
        try:
            links[prefix] = reverse(name, request=request)
        except NoReverseMatch:  # create-only (datasets): its collection URL
            links[prefix] = request.build_absolute_uri(f"/api/{prefix}/")
        about[prefix] = (viewset.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
    for prefix in ("stats", "schema", "docs"):
        links[prefix] = reverse(f"api:{prefix}", request=request)
    return Response({"name": "Data Refinery", "version": 1, "endpoints": links, "about": about})
