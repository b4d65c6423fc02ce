"""Basecalling engines: GPU servers outside the cluster that pull basecalling
work (BCManager's model) through the API.

    POST /api/engines/<engine>/assign                 claim queued basecalling jobs
    POST /api/engines/<engine>/jobs/<id>/keepalive    the job's heartbeat
    POST /api/engines/<engine>/jobs/<id>/completed    outputs (multipart) or a failure
    GET  /api/engines/heartbeat                       the service is alive
    GET  /api/engines/                                engines, last contact, their jobs

There is one bookkeeping: an engine claims ProcessorJobs with the workers'
claim and runs them as their worker (runner/engines.py); a keepalive is the
job's heartbeat (as `job.beat()` writes it, and only for the engine's own
job); the Foreman takes back a job whose keepalives stop. Each engine
authenticates with its own token (`manage.py engines add NAME`) and may touch
only its own jobs. A completion is checked (every read id accounted for) and
recorded by the processor's own steps (processors/basecalling/engine.py).
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import Count, F, Value
from django.db.models.functions import Concat
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.decorators import (
    api_view,
    authentication_classes,
    parser_classes,
    permission_classes,
)
from rest_framework.exceptions import (
    AuthenticationFailed,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from api.models import Engine
from common.models import JobState, ProcessorJob, ProcessorPipeline
from common.storage import LocalStorage, temporary_storage
from common.version import refinery_version
from processors.basecalling import output_format
from processors.basecalling.engine import (
    batch_files,
    local_inputs,
    output_name,
    record_engine_basecalls,
    unknown_outputs,
)
from runner.engines import (
    claim_for_engine,
    engine_worker_id,
    make_assigned_folder,
    remove_assigned_folder,
)
from runner.pipeline import JobError

PIPELINES = (ProcessorPipeline.BASECALLING,)
COMPLETING = ":completing"
REASON_MAX = 2000


def report_every_s() -> float:
    """How often an engine sends keepalives: four per lease, as local workers beat."""
    return max(0.5, settings.REFINERY_HEARTBEAT_LEASE_S / 4)


class EngineTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, reading the token's user and engine in one
    query: an engine sends a request every few seconds."""

    def authenticate_credentials(self, key: str):
        try:
            token = Token.objects.select_related("user", "user__engine").get(key=key)
        except Token.DoesNotExist:
            raise AuthenticationFailed("Invalid token.") from None
        if not token.user.is_active:
            raise AuthenticationFailed("User inactive or deleted.")
        return token.user, token


class EngineTokenScheme(OpenApiAuthenticationExtension):
    """The engines' token in the OpenAPI schema: a scheme of its own name."""

    target_class = "api.engines.EngineTokenAuthentication"
    name = "engineTokenAuth"
    priority = 1

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": 'An engine\'s token (`manage.py engines add NAME`), prefixed "Token "',
        }


ENGINE_AUTH = [EngineTokenAuthentication]


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


# --- serializers ------------------------------------------------------------------------------


class AssignRequestSerializer(serializers.Serializer):
    batch_size = serializers.IntegerField(
        min_value=1,
        required=False,
        default=1,
        help_text="how many jobs (each one batch of pod5 files) to take at most "
        "(REFINERY_ENGINE_MAX_BATCH caps it)",
    )
    version = serializers.CharField(
        max_length=64, required=False, default="", help_text="the engine's software version"
    )

    def validate_batch_size(self, value: int) -> int:
        if value > settings.REFINERY_ENGINE_MAX_BATCH:
            raise ValidationError(f"at most {settings.REFINERY_ENGINE_MAX_BATCH}")
        return value


class AssignedFileSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="its name in the folder, and in Dorado's fn:Z: tag")
    size = serializers.IntegerField(allow_null=True)
    sha256 = serializers.CharField()
    url = serializers.CharField(
        allow_null=True, help_text="a presigned URL (S3 storage); null: read it in `folder`"
    )


class AssignmentSerializer(serializers.Serializer):
    job = serializers.IntegerField()
    pipeline = serializers.CharField()
    model = serializers.CharField(help_text="the Dorado model to run")
    output = serializers.ChoiceField(choices=["fastq", "bam"])
    folder = serializers.CharField(
        allow_null=True,
        help_text="ASSIGNED_<job>_<engine>/: links to the pod5 files (local storage)",
    )
    files = AssignedFileSerializer(many=True)
    outputs = serializers.ListField(
        child=serializers.CharField(), help_text="the output to send for each pod5 file"
    )
    keepalive = serializers.URLField()
    completed = serializers.URLField(
        help_text="POST the outputs here, multipart/form-data, each as a file in `outputs`"
    )


class AssignResponseSerializer(serializers.Serializer):
    jobs = AssignmentSerializer(many=True)
    report_every_s = serializers.FloatField(help_text="send a keepalive this often")
    lease_s = serializers.IntegerField(help_text="a job without keepalives this long is taken back")


class JobStateSerializer(serializers.Serializer):
    job = serializers.IntegerField()
    state = serializers.CharField()
    failure_reason = serializers.CharField(allow_blank=True)
    results = serializers.ListField(child=serializers.CharField(), required=False)


class CompletionSerializer(serializers.Serializer):
    success = serializers.BooleanField(help_text="whether the engine basecalled the batch")
    reason = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="why it failed"
    )
    interrupted = serializers.BooleanField(
        required=False,
        default=False,
        help_text="the engine was stopped (SIGTERM): the retry does not spend one",
    )
    no_retry = serializers.BooleanField(
        required=False, default=False, help_text="another attempt cannot help (a missing model)"
    )
    outputs = serializers.ListField(
        child=serializers.FileField(), required=False, default=list, help_text="one per pod5 file"
    )
    dorado_version = serializers.CharField(max_length=64, required=False, default="")
    model = serializers.CharField(max_length=200, required=False, default="")
    basecalled = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    filtered = serializers.IntegerField(
        min_value=0, required=False, default=0, help_text="reads Dorado reports it filtered"
    )
    command = serializers.ListField(
        child=serializers.CharField(max_length=1000), required=False, default=list
    )

    def validate(self, data: dict) -> dict:
        if data["success"] and not data["outputs"]:
            raise ValidationError({"outputs": "a successful completion sends its outputs"})
        if not data["success"] and data["outputs"]:
            raise ValidationError({"outputs": "a failed completion sends no outputs"})
        return data


class EngineSerializer(serializers.ModelSerializer):
    running = serializers.SerializerMethodField()
    jobs = serializers.SerializerMethodField()

    class Meta:
        model = Engine
        fields = ["name", "created_at", "last_contact_at", "running", "jobs"]

    def get_running(self, engine: Engine) -> list[int]:
        return self.context["running"].get(engine.name, [])

    def get_jobs(self, engine: Engine) -> dict[str, int]:
        """Its jobs by state."""
        return self.context["counts"].get(engine.name, {})


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
        job = claim_for_engine(row.name, version, PIPELINES)
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


def assignment_of(request: Request, job: ProcessorJob, engine: str) -> dict | None:
    """What an engine needs to run `job`, just claimed; None (and the job failed
    with why) when it cannot run: its inputs left temporary storage, say."""
    try:
        files = batch_files(job)
        output = output_format()
        paths = local_inputs(job, [original for original, _name in files])
        folder = None
        if paths is not None:
            links = {name: paths[original.pk] for original, name in files}
            folder = str(make_assigned_folder(job, engine, links))
    except JobError as error:
        job.mark_failed(error.reason, no_retry=error.no_retry)
        return None
    except OSError as error:
        job.mark_failed(f"cannot make the engine's folder of links: {error}")
        return None
    storage = temporary_storage()
    expires = settings.REFINERY_DOWNLOAD_URL_EXPIRES_S
    args = [engine, job.pk]
    return {
        "job": job.pk,
        "pipeline": job.pipeline,
        "model": settings.REFINERY_DORADO_MODEL,
        "output": output,
        "folder": folder,
        "files": [
            {
                "name": name,
                "size": original.size,
                "sha256": original.sha256,
                "url": None
                if isinstance(storage, LocalStorage)
                else storage.url(original.temp_key, expires_s=expires),
            }
            for original, name in files
        ],
        "outputs": [output_name(name, output) for _original, name in files],
        "keepalive": reverse("api:engine-keepalive", args=args, request=request),
        "completed": reverse("api:engine-completed", args=args, request=request),
    }


@extend_schema(
    request=None,
    responses={200: JobStateSerializer, 409: JobStateSerializer},
)
@api_view(["POST"])
@authentication_classes(ENGINE_AUTH)
@permission_classes([IsAuthenticated])
def keepalive(request: Request, engine: str, job_id: int) -> Response:
    """The engine still works on the job: its heartbeat. 409 when the job is no
    longer running (taken back, cancelled): stop working on it."""
    row = own_engine(request, engine)
    row.touch()
    # One UPDATE when all is well: the job is this engine's and runs.
    beaten = ProcessorJob.objects.filter(
        pk=job_id, worker_id=engine_worker_id(row.name), state=JobState.RUNNING
    ).update(heartbeat_at=timezone.now())
    if not beaten:
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
@parser_classes([MultiPartParser, FormParser, JSONParser])
def completed(request: Request, engine: str, job_id: int) -> Response:
    """The engine finished the job: `success` with its `outputs` (one file per
    pod5 file, multipart), checked before they are recorded (422 and the job
    failed when a read is unaccounted for); or a failure with its `reason`
    (`interrupted` when the engine was stopped: the retry does not count). A
    completion of a job that is not running is answered 409 and changes nothing."""
    row = own_engine(request, engine)
    job = own_job(row, job_id)
    row.touch()
    sent = CompletionSerializer(data=request.data)
    sent.is_valid(raise_exception=True)
    data = sent.validated_data
    if job.state != JobState.RUNNING:
        return not_running(job, "its completion was recorded already, or it was taken back")
    if data["success"]:
        problem = unknown_outputs(job, [upload.name for upload in data["outputs"]])
        if problem:
            raise ValidationError({"outputs": problem})
    if not claim_completion(job):
        job.refresh_from_db()
        if job.state == JobState.RUNNING:
            return Response(
                {"detail": f"job {job.pk}'s completion is being recorded already",
                 "job": job.pk, "state": job.state, "failure_reason": ""},
                status=status.HTTP_409_CONFLICT,
            )  # fmt: skip
        return not_running(job, "its completion was recorded already, or it was taken back")
    try:
        return finish(job, row.name, data)
    finally:
        remove_assigned_folder(job)


def claim_completion(job: ProcessorJob) -> bool:
    """Make this request the only one completing `job` (a replay racing it gets
    409): the claim in `dispatch_id` is marked, conditionally, in one UPDATE."""
    if job.dispatch_id.endswith(COMPLETING):
        return False
    return bool(
        ProcessorJob.objects.filter(
            pk=job.pk, state=JobState.RUNNING, dispatch_id=job.dispatch_id
        ).update(dispatch_id=Concat(F("dispatch_id"), Value(COMPLETING)))
    )


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
    context = record_engine_basecalls(job, engine, data["outputs"], report)
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
