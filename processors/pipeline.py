"""The job_context pipeline every processor is built from.

A processor is `def process(job_id): return run_pipeline({"job_id": job_id},
[start_job, prepare_job_dir, ..., upload_processed_files, cleanup_raw_files,
end_job])`. Each step takes the job_context dict and returns it. A step that
sets `success: False` (with a `failure_reason`) or raises `ProcessorJobError`
ends the pipeline and fails the job with that reason; any other exception fails
it with the step's name and the error. Whatever happens, `end_job` runs: it
frees the job directory and records the outcome.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from common.job_lookup import JobKind
from common.models import (
    Batch,
    BatchStatus,
    ComputedFile,
    JobState,
    OriginalFile,
    ProcessorJob,
    Provenance,
)
from common.secrets import redact
from common.storage import StorageError, permanent_storage, sha256_of_file, temporary_storage
from common.version import refinery_version
from common.work_dirs import job_work_dir

logger = logging.getLogger(__name__)

JobContext = dict
Step = Callable[[JobContext], JobContext]


class ProcessorJobError(Exception):
    """A step's failure, with the reason an operator will read. `no_retry` says
    that another attempt cannot help (bad input, not a bad day)."""

    def __init__(self, reason: str, no_retry: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.no_retry = no_retry


def run_pipeline(initial_context: JobContext, steps: Iterable[Step]) -> JobContext:
    """Run `steps` in order over the job_context; see the module docstring."""
    context = initial_context
    steps = list(steps)
    for step in steps:
        name = getattr(step, "__name__", repr(step))
        try:
            returned = step(context)
        except ProcessorJobError as error:
            context.update(success=False, failure_reason=error.reason, no_retry=error.no_retry)
        except Exception as error:
            logger.exception("step %s failed", name)
            context.update(
                success=False, failure_reason=f"step {name} failed: {type(error).__name__}: {error}"
            )
        else:
            if not isinstance(returned, dict):
                context.update(
                    success=False,
                    failure_reason=f"step {name} returned {type(returned).__name__}, not the "
                    "job_context",
                )
            else:
                context = returned
        if context.get("success") is False:
            context.setdefault("failure_reason", "")
            if not context["failure_reason"]:
                context["failure_reason"] = f"step {name} reported failure without a reason"
            logger.error("pipeline stopped at %s: %s", name, context["failure_reason"])
            if step is not end_job and end_job in steps:
                end_job(context)
            return context
    return context


# --- shared steps -------------------------------------------------------------------------------


def start_job(context: JobContext) -> JobContext:
    """Load the job, its batches and their files; the job must be running."""
    job = ProcessorJob.objects.get(pk=context["job_id"])
    if job.state != JobState.RUNNING:
        raise ProcessorJobError(
            f"processor job {job.pk} is {job.state}, not running: start it with "
            f"`manage.py run_job processor {job.pk}`",
            no_retry=True,
        )
    batches = list(job.batches.select_related("organism").order_by("id"))
    if not batches:
        raise ProcessorJobError(f"processor job {job.pk} has no batches", no_retry=True)
    files = list(OriginalFile.objects.filter(batches__in=batches).distinct().order_by("id"))
    context.update(
        job=job,
        pipeline=job.pipeline,
        batches=batches,
        original_files=files,
        started_at=timezone.now(),
        commands=[],
        tools={},
        computed_files=[],
        parameters={},
        # Set in the worker images, so a result says which image made it.
        docker_image=os.environ.get("REFINERY_DOCKER_IMAGE", ""),
    )
    context.setdefault("success", None)
    return context


def prepare_job_dir(context: JobContext) -> JobContext:
    """A fresh scratch directory that belongs to this job alone."""
    path = job_work_dir(JobKind.PROCESSOR, context["job_id"])
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    context["work_dir"] = path
    return context


def fetch_raw_files(context: JobContext) -> JobContext:
    """Copy each input from temporary storage into the job directory and check it
    is the file that was downloaded."""
    storage = temporary_storage()
    raw_dir = context["work_dir"] / "raw"
    paths: dict[int, Path] = {}
    for original in context["original_files"]:
        if not original.is_downloaded or not original.temp_key:
            raise ProcessorJobError(
                f"{original.filename} was never downloaded: retry its downloader job"
            )
        try:
            path = storage.fetch(original.temp_key, raw_dir / original.filename)
        except StorageError as error:
            raise ProcessorJobError(f"cannot fetch {original.filename}: {error}") from error
        if original.sha256 and sha256_of_file(path) != original.sha256:
            raise ProcessorJobError(
                f"{original.filename} in temporary storage does not match the SHA-256 "
                "recorded at download: download it again"
            )
        paths[original.pk] = path
    context["raw_paths"] = paths
    return context


def add_computed_file(context: JobContext, path: Path, file_format: str) -> None:
    """Mark a file in the job directory as a result to upload."""
    context["computed_files"].append({"path": Path(path), "format": file_format})


def result_key(job: ProcessorJob, filename: str) -> str:
    return f"processor/{job.pipeline}/job-{job.pk}/{filename}"


def upload_processed_files(context: JobContext) -> JobContext:
    """Store the results in permanent storage and record them with their
    provenance, all or nothing: if the job was finished elsewhere meanwhile (the
    Foreman gave up on it) or recording fails, the uploaded objects are removed.

    A pipeline whose results need rows of their own (a TranscriptomeIndex, say)
    puts a callable in `context["record_results"]`; it is called with the
    context and the new ComputedFiles inside the same transaction, so those rows
    exist exactly when the results do."""
    job: ProcessorJob = context["job"]
    storage = permanent_storage()
    if not context["computed_files"]:
        raise ProcessorJobError("the pipeline produced no results to upload")
    stored = []
    try:
        for result in context["computed_files"]:
            path: Path = result["path"]
            stored.append((result, storage.put_file(path, result_key(job, path.name))))
        with transaction.atomic():
            locked = ProcessorJob.objects.select_for_update().get(pk=job.pk)
            if locked.state != JobState.RUNNING:
                raise ProcessorJobError(
                    f"processor job {job.pk} became {locked.state} while it ran; "
                    "its results were discarded"
                )
            provenance = Provenance.objects.create(
                processor_job=job,
                processor_name=job.pipeline,
                processor_version=refinery_version(),
                docker_image=context.get("docker_image", ""),
                tools=context["tools"],
                commands=[[redact(str(arg)) for arg in cmd] for cmd in context["commands"]],
                inputs=[
                    {
                        "filename": f.filename,
                        "source_url": f.source_url,
                        "size": f.size,
                        "sha256": f.sha256,
                        "expected_checksums": f.expected_checksums,
                    }
                    for f in context["original_files"]
                ],
                parameters=context["parameters"],
                started_at=context["started_at"],
                ended_at=timezone.now(),
            )
            computed = []
            for result, obj in stored:
                computed_file = ComputedFile.objects.create(
                    key=obj.key,
                    filename=result["path"].name,
                    format=result["format"],
                    size=obj.size,
                    sha256=obj.sha256,
                    processor_job=job,
                    provenance=provenance,
                )
                computed_file.batches.set(context["batches"])
                computed.append(computed_file)
            record_results = context.get("record_results")
            if record_results is not None:
                record_results(context, computed)
    except BaseException:
        for _result, obj in stored:
            try:
                storage.delete(obj.key)
            except StorageError:
                logger.exception("could not remove %s after a failed upload", obj.key)
        raise
    context["provenance"] = provenance
    context["uploaded_files"] = computed
    return context


def cleanup_raw_files(context: JobContext) -> JobContext:
    """Mark this job's batches processed, then remove from temporary storage every
    input whose batches are all processed: no other job needs it any more."""
    batch_ids = [b.pk for b in context["batches"]]
    Batch.objects.filter(pk__in=batch_ids).update(status=BatchStatus.PROCESSED)
    storage = temporary_storage()
    for original in context["original_files"]:
        with transaction.atomic():
            locked = OriginalFile.objects.select_for_update().get(pk=original.pk)
            if not locked.temp_key:
                continue
            if locked.batches.exclude(status=BatchStatus.PROCESSED).exists():
                continue
            try:
                storage.delete(locked.temp_key)
            except StorageError:
                logger.warning("could not remove %s from temporary storage", locked.temp_key)
                continue
            locked.forget_download()
    return context


def end_job(context: JobContext) -> JobContext:
    """Free the job directory and record the outcome."""
    shutil.rmtree(job_work_dir(JobKind.PROCESSOR, context["job_id"]), ignore_errors=True)
    job = context.get("job") or ProcessorJob.objects.get(pk=context["job_id"])
    if context.get("success") is False:
        job.mark_failed(context.get("failure_reason", ""), no_retry=context.get("no_retry", False))
    else:
        context["success"] = job.mark_succeeded()
        if not context["success"]:
            context["failure_reason"] = f"processor job {job.pk} was {job.state} when it ended"
    return context
