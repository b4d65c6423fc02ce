"""Datasets through the API: `POST /api/datasets/` asks for one (an authenticated
user or token, throttled), `GET /api/datasets/<id>/` says where it is, and
`GET /api/datasets/<id>/download/?file=tsv|parquet` fetches the matrix once it is
ready (api/downloads.py: who may, and how)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import transaction
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.throttling import ScopedRateThrottle

from api.downloads import check_may_download, download_response
from common.models import (
    Batch,
    ComputedFile,
    Dataset,
    DatasetState,
    DatasetValue,
    Experiment,
    Organism,
    ProcessorJob,
    ProcessorPipeline,
    Quantification,
    Sample,
    SurveySource,
)
from runner.dispatch.outbox import send_job

ACCESSION_MAX = 64


class DatasetRequestSerializer(serializers.Serializer):
    """What a client asks for: samples and/or experiments (by accession), one
    organism, and counts or TPM."""

    samples = serializers.ListField(
        child=serializers.CharField(max_length=ACCESSION_MAX), required=False, default=list
    )
    experiments = serializers.ListField(
        child=serializers.CharField(max_length=ACCESSION_MAX), required=False, default=list
    )
    organism = serializers.CharField(
        max_length=255, required=False, help_text="scientific name; checked against the samples'"
    )
    value = serializers.ChoiceField(choices=DatasetValue.choices, default=DatasetValue.COUNTS)

    def validate(self, data: dict) -> dict:
        limit = settings.REFINERY_DATASET_MAX_SAMPLES
        asked = len(data["samples"]) + len(data["experiments"])
        if not asked:
            raise ValidationError("name at least one sample or experiment by accession")
        if asked > limit:
            raise ValidationError(f"at most {limit} accessions in one dataset")
        samples = self._samples(data)
        organisms = {sample.organism for sample in samples}
        if len(organisms) > 1 or None in organisms:
            names = sorted(str(o) if o else "(unknown)" for o in organisms)
            raise ValidationError(
                {"organism": f"a dataset holds one organism; these samples are {', '.join(names)}"}
            )
        organism = organisms.pop()
        if "organism" in data and organism.scientific_name.lower() != data["organism"].lower():
            raise ValidationError(
                {"organism": f"the samples are {organism}, not {data['organism']}"}
            )
        quantified = set(
            Quantification.objects.filter(batch__samples__in=samples).values_list(
                "batch__samples__accession", flat=True
            )
        )
        waiting = sorted(
            sample.accession for sample in samples if sample.accession not in quantified
        )
        if waiting:
            raise ValidationError(
                {"samples": f"not quantified yet (ask again later): {', '.join(waiting[:20])}"}
            )
        data["sample_rows"], data["organism_row"] = samples, organism
        return data

    def _samples(self, data: dict) -> list[Sample]:
        by_accession = {
            s.accession: s
            for s in Sample.objects.filter(accession__in=data["samples"]).select_related("organism")
        }
        unknown = sorted(set(data["samples"]) - set(by_accession))
        experiments = Experiment.objects.filter(accession__in=data["experiments"])
        unknown += sorted(
            set(data["experiments"]) - set(experiments.values_list("accession", flat=True))
        )
        if unknown:
            raise ValidationError(
                f"no sample or experiment has these accessions: {', '.join(unknown[:20])}"
            )
        for sample in Sample.objects.filter(experiments__in=experiments).select_related("organism"):
            by_accession.setdefault(sample.accession, sample)
        if not by_accession:
            raise ValidationError("these experiments have no samples")
        return list(by_accession.values())


class DatasetFileSerializer(serializers.ModelSerializer):
    class Meta:
        model = ComputedFile
        fields = ["filename", "format", "size", "sha256"]


class DatasetSerializer(serializers.ModelSerializer):
    organism = serializers.StringRelatedField()
    state = serializers.CharField(read_only=True)
    failure_reason = serializers.CharField(read_only=True)
    samples = serializers.SlugRelatedField(slug_field="accession", many=True, read_only=True)
    files = serializers.SerializerMethodField()

    class Meta:
        model = Dataset
        fields = [
            "id", "state", "failure_reason", "organism", "value", "samples", "genes",
            "requested", "files", "created_at",
        ]  # fmt: skip

    def get_files(self, dataset: Dataset) -> list[dict]:
        request = self.context.get("request")
        files = []
        for kind, computed in (("tsv", dataset.matrix_file), ("parquet", dataset.parquet_file)):
            if computed is None:
                continue
            url = reverse("api:dataset-download", args=[dataset.pk], request=request)
            files.append({**DatasetFileSerializer(computed).data, "url": f"{url}?file={kind}"})
        return files


class IsAuthenticatedToCreate(permissions.BasePermission):
    """Anyone holding a dataset's id may read it; asking for one needs a user."""

    def has_permission(self, request: Request, view) -> bool:
        return request.method in permissions.SAFE_METHODS or bool(
            request.user and request.user.is_authenticated
        )


class DatasetViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Gene-by-sample matrices of quantified samples. POST samples and/or
    experiments (accessions) and `value` (counts or tpm); the answer's `id` is
    the dataset's, to GET until its `state` is `ready`. The list holds the
    datasets the requesting user asked for (none for anonymous users)."""

    queryset = Dataset.objects.select_related(
        "organism", "matrix_file", "parquet_file"
    ).prefetch_related("samples")
    permission_classes = [IsAuthenticatedToCreate]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "datasets"
    filter_backends: list = []
    pagination_class = None

    def get_serializer_class(self):
        return DatasetRequestSerializer if self.action == "create" else DatasetSerializer

    def get_throttles(self):
        # Reading a dataset while it builds is polling, not asking for work.
        return super().get_throttles() if self.action == "create" else []

    def get_queryset(self):
        if self.action == "list":
            user = self.request.user
            if not (user and user.is_authenticated):
                return self.queryset.none()
            return self.queryset.filter(created_by=user)
        return self.queryset

    def get_object(self) -> Dataset:
        try:
            return self.queryset.get(pk=uuid.UUID(str(self.kwargs["pk"])))
        except (Dataset.DoesNotExist, ValueError):
            raise NotFound("no dataset has this id") from None

    def create(self, request: Request, *args, **kwargs) -> Response:
        asked = DatasetRequestSerializer(data=request.data)
        asked.is_valid(raise_exception=True)
        dataset = create_dataset(asked.validated_data, request.user)
        body = DatasetSerializer(dataset, context={"request": request}).data
        location = reverse("api:dataset-detail", args=[dataset.pk], request=request)
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": location})

    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk: str | None = None):
        """The matrix: `?file=tsv` (gzip TSV, the default) or `?file=parquet`."""
        check_may_download(request)
        dataset = self.get_object()
        kind = request.query_params.get("file", "tsv")
        if kind not in ("tsv", "parquet"):
            raise ValidationError({"file": "tsv or parquet"})
        computed = dataset.matrix_file if kind == "tsv" else dataset.parquet_file
        if dataset.state != DatasetState.READY or computed is None:
            return Response(
                {"detail": f"the dataset is {dataset.state}, not ready: ask again later"},
                status=status.HTTP_409_CONFLICT,
            )
        name = f"dataset-{dataset.pk}.{'tsv.gz' if kind == 'tsv' else 'parquet'}"
        return download_response(computed, name)


@transaction.atomic
def create_dataset(asked: dict, user) -> Dataset:
    """The dataset, its batch and its processor job, sent once they commit."""
    organism: Organism = asked["organism_row"]
    dataset_id = uuid.uuid4()
    batch = Batch.objects.create(
        source=SurveySource.DATASETS,
        accession=str(dataset_id),
        pipeline_required=ProcessorPipeline.DATASET_MATRIX,
        organism=organism,
    )
    dataset = Dataset.objects.create(
        id=dataset_id,
        organism=organism,
        value=asked["value"],
        requested={"samples": asked["samples"], "experiments": asked["experiments"]},
        batch=batch,
        created_by=user if user and user.is_authenticated else None,
    )
    dataset.samples.set(asked["sample_rows"])
    job = ProcessorJob.objects.create(pipeline=ProcessorPipeline.DATASET_MATRIX)
    job.batches.add(batch)
    send_job(job)
    return dataset
