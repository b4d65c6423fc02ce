"""The engine API's views (the package's docstring says what they are for).

The three an engine calls over and over (assign, keepalive, completed) take as
few statements as the work allows: the token, its user and its engine in one
(auth.py); the engine's last contact written at most once a second; the claim
of a job and of its completion each one UPDATE (the completion's returns the
job's row, so a failure reported for a running job reads nothing else).
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import Count
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import (
    api_view,
    authentication_classes,
    content_negotiation_class,
    parser_classes,
    permission_classes,
    renderer_classes,
)
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from api.engines.assignments import assignment_of
from api.engines.auth import ENGINE_AUTH
from api.engines.completion import claim_completion
from api.engines.serializers import (
    AssignRequestSerializer,
    AssignResponseSerializer,
    CompletionSerializer,
    EngineSerializer,
    JobStateSerializer,
)
from api.models import Engine
from common.models import JobState, ProcessorJob
from common.version import refinery_version
from runner.engines import (
    claim_for_engine,
    engine_worker_id,
    remove_assigned_folder,
)
from runner.registry import engine_work

# Engines are programs: their endpoints answer JSON only (no browsable API to build).
ENGINE_RENDERERS = [JSONRenderer]


class JSONAnswers(DefaultContentNegotiation):
    """JSON whatever the request's Accept says (DRF's "ignore the client" content
    negotiation): an engine's endpoints have one renderer, and the request's
    body is still parsed by its Content-Type."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


REASON_MAX = 2000


def report_every_s() -> float:
    """How often an engine sends keepalives: four per lease, as local workers beat."""
    return max(0.5, settings.REFINERY_HEARTBEAT_LEASE_S / 4)


def own_engine(request: Request, name: str) -> Engine:
    """The engine `name`, when the request's token is its own (403 otherwise)."""
    engine = getattr(request.user, "engine", None)
    if engine is None or engine.name != name:
        raise PermissionDenied(
            f"this token is not engine {name[:70]!r}'s: each engine uses the token "
            "`manage.py engines add` printed for it"
        )
    return engine


def own_job(engine: Engine, job_id: int) -> ProcessorJob:
    """A job this engine claimed (404 for any other, whoever runs it)."""
    job = ProcessorJob.objects.filter(pk=job_id, worker_id=engine_worker_id(engine.name)).first()
    if job is None:
        raise NotFound(f"engine {engine.name} has no job {job_id}")
    return job


def not_running(job: ProcessorJob, what: str) -> Response:
    """409: the job is not the engine's to work on any more."""
    body = {
        "detail": f"job {job.pk} is {job.state}, not running: {what}",
        "job": job.pk,
        "state": job.state,
        "failure_reason": job.failure_reason,
    }
    return Response(body, status=status.HTTP_409_CONFLICT)


# --- views ------------------------------------------------------------------------------------


@extend_schema(
    responses=inline_serializer(
        "EngineHeartbeat",
        {
            "alive": serializers.BooleanField(),
            "time": serializers.DateTimeField(),
            "version": serializers.CharField(),
        },
    )
)
@api_view(["GET"])
@permission_classes([AllowAny])
def heartbeat(request: Request) -> Response:
    """The engine service is alive (and reaches its database)."""
    Engine.objects.exists()
    return Response({"alive": True, "time": timezone.now(), "version": refinery_version()})


@extend_schema(responses=EngineSerializer(many=True))
@api_view(["GET"])
def engine_list(request: Request) -> Response:
    """Every engine, when it was last heard from, the jobs it runs now and its
    jobs by state."""
    engines = list(Engine.objects.all())
    workers = {engine_worker_id(e.name): e.name for e in engines}
    jobs = ProcessorJob.objects.filter(worker_id__in=list(workers))
    counts: dict[str, dict[str, int]] = {}
    for row in jobs.values("worker_id", "state").annotate(n=Count("id")):
        counts.setdefault(workers[row["worker_id"]], {})[row["state"]] = row["n"]
    running: dict[str, list[int]] = {}
    for worker_id, pk in jobs.filter(state=JobState.RUNNING).values_list("worker_id", "pk"):
        running.setdefault(workers[worker_id], []).append(pk)
    context = {"request": request, "running": running, "counts": counts}
    return Response(EngineSerializer(engines, many=True, context=context).data)


@extend_schema(
    request=AssignRequestSerializer,
    responses={
        200: AssignResponseSerializer,
        204: OpenApiResponse(description="nothing to do: ask again later"),
    },
)
@api_view(["POST"])
@authentication_classes(ENGINE_AUTH)
@permission_classes([IsAuthenticated])
@renderer_classes(ENGINE_RENDERERS)
@content_negotiation_class(JSONAnswers)
def assign(request: Request, engine: str) -> Response:
    """Take the next queued basecalling jobs (`batch_size`, default 1): each
    answer says where the pod5 files are, what to send back and where, and how
    often to send keepalives. 204 when nothing waits."""
    row = own_engine(request, engine)
    asked = AssignRequestSerializer(data=request.data)
    asked.is_valid(raise_exception=True)
    row.touch()
    version = asked.validated_data["version"] or "engine"
    assignments = []
    for _ in range(asked.validated_data["batch_size"]):
        job = claim_for_engine(row.name, version)
        if job is None:
            break
        assignment = assignment_of(request, job, row.name)
        if assignment is not None:
            assignments.append(assignment)
    if not assignments:
        return Response(status=status.HTTP_204_NO_CONTENT)
    body = {
        "jobs": assignments,
        "report_every_s": report_every_s(),
        "lease_s": settings.REFINERY_HEARTBEAT_LEASE_S,
    }
    return Response(body)


@extend_schema(
    request=None,
    responses={200: JobStateSerializer, 409: JobStateSerializer},
)
@api_view(["POST"])
@authentication_classes(ENGINE_AUTH)
@permission_classes([IsAuthenticated])
@renderer_classes(ENGINE_RENDERERS)
@content_negotiation_class(JSONAnswers)
def keepalive(request: Request, engine: str, job_id: int) -> Response:
    """The engine still works on the job: its heartbeat. 409 when the job is no
    longer running (taken back, cancelled): stop working on it."""
    row = own_engine(request, engine)
    row.touch()
    # One UPDATE when all is well: the job is this engine's and runs.
    if not ProcessorJob.beat_running(job_id, worker_id=engine_worker_id(row.name)):
        job = own_job(row, job_id)
        remove_assigned_folder(job)
        return not_running(job, "stop working on it")
    return Response({"job": job_id, "state": JobState.RUNNING, "failure_reason": ""})


@extend_schema(
    request={"multipart/form-data": CompletionSerializer, "application/json": CompletionSerializer},
    responses={
        200: JobStateSerializer,
        400: OpenApiTypes.OBJECT,
        409: JobStateSerializer,
        422: JobStateSerializer,
    },
)
@api_view(["POST"])
@authentication_classes(ENGINE_AUTH)
@permission_classes([IsAuthenticated])
@renderer_classes(ENGINE_RENDERERS)
@content_negotiation_class(JSONAnswers)
@parser_classes([MultiPartParser, FormParser, JSONParser])
def completed(request: Request, engine: str, job_id: int) -> Response:
    """The engine finished the job: `success` with its `outputs` (one file per
    pod5 file, multipart), checked before they are recorded (422 and the job
    failed when a read is unaccounted for); or a failure with its `reason`
    (`interrupted` when the engine was stopped: the retry does not count). A
    completion of a job that is not running is answered 409 and changes nothing."""
    row = own_engine(request, engine)
    row.touch()
    sent = CompletionSerializer(data=request.data)
    if not sent.is_valid():
        own_job(row, job_id)  # another engine's job is answered 404 whatever was sent
        raise ValidationError(sent.errors)
    data = sent.validated_data
    if data["success"]:
        # The outputs are checked against the job's batch before the claim.
        job = own_job(row, job_id)
        if job.state != JobState.RUNNING:
            return not_running(job, "its completion was recorded already, or it was taken back")
        names = [upload.name for upload in data["outputs"]]
        problem = engine_work(job.pipeline).unknown_outputs(job, names)
        if problem:
            raise ValidationError({"outputs": problem})
        claimed = claim_completion(row.name, job_id, job.dispatch_id)
    else:
        claimed = claim_completion(row.name, job_id)
    if claimed is None:
        return completion_refused(row, job_id)
    try:
        return finish(claimed, row.name, data)
    finally:
        remove_assigned_folder(claimed)


def completion_refused(engine: Engine, job_id: int) -> Response:
    """Why job `job_id`'s completion could not be claimed: not the engine's job
    (404), or not running any more, or being completed by another request (409)."""
    job = own_job(engine, job_id)
    if job.state == JobState.RUNNING:
        return Response(
            {"detail": f"job {job.pk}'s completion is being recorded already",
             "job": job.pk, "state": job.state, "failure_reason": ""},
            status=status.HTTP_409_CONFLICT,
        )  # fmt: skip
    return not_running(job, "its completion was recorded already, or it was taken back")


def finish(job: ProcessorJob, engine: str, data: dict) -> Response:
    """Record the completion the engine sent."""
    if not data["success"]:
        reason = f"engine {engine}: {data['reason'] or 'failed without a reason'}"[:REASON_MAX]
        if data["interrupted"]:
            changed = job.mark_interrupted(f"interrupted: {reason}")
        else:
            changed = job.mark_failed(reason, no_retry=data["no_retry"])
        if not changed:
            return not_running(job, "it was taken back meanwhile")
        return Response({"job": job.pk, "state": job.state, "failure_reason": job.failure_reason})
    report = {
        "dorado_version": data["dorado_version"],
        "model": data["model"],
        "basecalled": data.get("basecalled"),
        "filtered": data["filtered"],
        "command": data["command"],
    }
    context = engine_work(job.pipeline).record(job, engine, data["outputs"], report)
    job.refresh_from_db()
    body = {"job": job.pk, "state": job.state, "failure_reason": job.failure_reason}
    if job.state == JobState.SUCCEEDED and context.get("uploaded_files"):
        body["results"] = [f.filename for f in context["uploaded_files"]]
        return Response(body)
    if job.state == JobState.FAILED and context.get("success") is False:
        if context.get("finished_elsewhere"):
            return not_running(job, "it was taken back while its outputs were checked")
        body["detail"] = f"the outputs were not accepted: {job.failure_reason}"
        return Response(body, status=status.HTTP_422_UNPROCESSABLE_ENTITY)
    return not_running(job, "it was taken back while its outputs were checked")
