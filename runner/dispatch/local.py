"""The local dispatcher: `manage.py worker` processes claim queued jobs from the
database, so sending a job only marks it queued."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.utils import timezone

from common.models import JOB_MODELS, Job, JobState, job_model
from common.models.choices import JobKind
from runner.dispatch.base import Capacity, Dispatcher, DispatchStatus

# Processors first: their data is already downloaded.
CLAIM_ORDER = (JobKind.PROCESSOR, JobKind.DOWNLOADER, JobKind.SURVEY)


class LocalDispatcher(Dispatcher):
    name = "local"

    def send(self, job: Job) -> str:
        return "local"

    def status(self, job: Job) -> DispatchStatus:
        """A queued local job waits for any worker; a running one is alive while
        its worker's heartbeat is younger than the lease."""
        if job.state in (JobState.CREATED, JobState.QUEUED):
            return DispatchStatus.PENDING
        if job.state == JobState.RUNNING:
            lease = timezone.timedelta(seconds=settings.REFINERY_HEARTBEAT_LEASE_S)
            if job.heartbeat_at and timezone.now() - job.heartbeat_at <= lease:
                return DispatchStatus.RUNNING
            return DispatchStatus.LOST
        return DispatchStatus.COMPLETE if job.state == JobState.SUCCEEDED else DispatchStatus.FAILED

    def stop(self, job: Job) -> None:
        """Workers check their jobs' state at every heartbeat and kill the child
        of a job that is no longer running: marking the job finished stops it."""

    def capacity(self) -> Capacity:
        queued = sum(m.objects.filter(state=JobState.QUEUED).count() for m in JOB_MODELS.values())
        running = sum(m.objects.filter(state=JobState.RUNNING).count() for m in JOB_MODELS.values())
        return Capacity(queued=queued, running=running)


def new_claim_id(worker_id: str) -> str:
    return f"local:{worker_id}:{uuid.uuid4().hex[:12]}"


def claim_next_job(
    worker_id: str,
    worker_version: str,
    kinds: tuple[str, ...] = CLAIM_ORDER,
    skip_pipelines: tuple[str, ...] = (),
) -> Job | None:
    """Atomically take the oldest queued job (processors first) and mark it
    running for this worker; processor jobs of `skip_pipelines` (which this
    machine cannot run) stay queued for others. Safe with any number of workers."""
    for kind in kinds:
        skip = skip_pipelines if kind == JobKind.PROCESSOR else ()
        job = _claim_one(job_model(kind), worker_id, worker_version, skip)
        if job is not None:
            return job
    return None


def _claim_one(
    model: type[Job], worker_id: str, worker_version: str, skip: tuple[str, ...] = ()
) -> Job | None:
    return model.claim_next(worker_id, worker_version, new_claim_id(worker_id), skip)
