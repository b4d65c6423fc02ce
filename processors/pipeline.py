"""What every processor pipeline shares: the steps around its own.

A processor module is its own steps only:

    def summarise_files(job):
        return run_processor(job, [summarise])

`run_processor` wraps them in the shared skeleton (`runner.pipeline` has the
step semantics): load the job's batches and files, make its work directory,
fetch its inputs from temporary storage, then the pipeline's own steps, then
store the results with their provenance and record the job's success in one
transaction, remove what failed earlier attempts stored and never recorded, and
the raw files no other job needs. A step adds a result
with `add_computed_file`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from common.filenames import UnsafeName, check_name
from common.models import (
    Batch,
    BatchStatus,
    ComputedFile,
    OriginalFile,
    ProcessorJob,
    Provenance,
)
from common.secrets import redact
from common.storage import (
    StorageError,
    StoredObject,
    permanent_storage,
    sha256_of_file,
    temporary_storage,
)
from common.version import refinery_version
from processors.redownload import download_again, missing_inputs
from runner.pipeline import JobContext, JobError, Step, record_success, run_pipeline
from runner.steps import checked_filename, discard_unrecorded_uploads, prepare_job_dir, start_job
from runner.work_dirs import work_path

logger = logging.getLogger(__name__)


class ProcessorContext(JobContext, total=False):
    """The keys every processor pipeline shares."""

    pipeline: str
    raw_paths: dict[int, Path]  # OriginalFile id → its copy in the work directory
    commands: list[list[str]]  # every external command run, for the provenance
    tools: dict[str, str]  # tool → version
    parameters: dict[str, Any]
    computed_files: list[dict]  # {"path", "format"}: results to store
    docker_image: str
    # Called inside the results' transaction with (context, new ComputedFiles), for
    # pipelines whose results need rows of their own (a TranscriptomeIndex, say).
    record_results: Callable[[Any, list[ComputedFile]], None]
    provenance: Provenance
    uploaded_files: list[ComputedFile]


def begin_processing(context: ProcessorContext) -> ProcessorContext:
    """The bookkeeping every processor keeps for its provenance."""
    context.update(
        pipeline=context["job"].pipeline,
        commands=[],
        tools={},
        computed_files=[],
        parameters={},
        # Set in the worker images, so a result says which image made it.
        docker_image=os.environ.get("REFINERY_DOCKER_IMAGE", ""),
    )
    return context


def fetch_raw_files(context: ProcessorContext) -> ProcessorContext:
    """Copy each input from temporary storage into the job directory, as
    `raw/<file id>/<its checked name>`, and check it is the file that was
    downloaded."""
    missing = missing_inputs(context["original_files"])
    if missing:  # another attempt could not find them either: download them again
        raise JobError(download_again(context["job"], missing), no_retry=True)
    storage = temporary_storage()
    paths: dict[int, Path] = {}
    for original in context["original_files"]:
        target = work_path(context["work_dir"], "raw", str(original.pk), checked_filename(original))
        try:
            path = storage.fetch(original.temp_key, target)
        except StorageError as error:
            raise JobError(f"cannot fetch {original.filename}: {error}") from error
        if original.sha256 and sha256_of_file(path) != original.sha256:
            raise JobError(
                f"{original.filename} in temporary storage does not match the SHA-256 "
                "recorded at download: download it again"
            )
        paths[original.pk] = path
    context["raw_paths"] = paths
    return context


def add_computed_file(context: ProcessorContext, path: Path, file_format: str) -> None:
    """Mark a file in the job directory as a result to upload."""
    path = work_path(context["work_dir"], path)
    context["computed_files"].append({"path": path, "format": file_format})


def add_stored_result(context: ProcessorContext, stored: StoredObject, file_format: str) -> None:
    """Mark an object the pipeline already put in permanent storage (under
    `result_key`, with its verified size and SHA-256) as a result to record: a
    copy made inside the storage never passes through the job directory. It is
    removed with the others if recording fails."""
    context["computed_files"].append(
        {"stored": stored, "filename": stored.key.rsplit("/", 1)[-1], "format": file_format}
    )


def result_prefix(job: ProcessorJob) -> str:
    """Where a job's results are stored: each attempt under its own prefix."""
    return f"processor/{job.pipeline}/job-{job.pk}/"


def result_key(job: ProcessorJob, filename: str) -> str:
    """Where a result is kept: under the pipeline and the job, by its name once
    that is checked to be one plain name."""
    try:
        name = check_name(filename, "the result's name")
    except UnsafeName as error:
        raise JobError(str(error), no_retry=True) from None
    return result_prefix(job) + name


def discard_earlier_attempts_files(context: ProcessorContext) -> ProcessorContext:
    """Remove what earlier, failed attempts of this job stored and never recorded
    (a worker killed between storing its results and recording them leaves
    them): the results this attempt recorded replace them."""

    def recorded(attempt: ProcessorJob, prefix: str) -> set[str]:
        return set(attempt.computed_files.values_list("key", flat=True))

    discard_unrecorded_uploads(context["job"], permanent_storage(), result_prefix, recorded)
    return context


def upload_processed_files(context: ProcessorContext) -> ProcessorContext:
    """Store the results in permanent storage, then record them with their
    provenance, mark the batches processed and the job succeeded, in one
    transaction: all or nothing. If the job was finished elsewhere meanwhile
    (the Foreman gave up on it) or recording fails, the stored objects are
    removed."""
    job: ProcessorJob = context["job"]
    storage = permanent_storage()
    if not context["computed_files"]:
        raise JobError("the pipeline produced no results to upload")
    stored = []

    def record() -> None:
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
                filename=result["filename"] if "stored" in result else result["path"].name,
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
        Batch.objects.filter(pk__in=[b.pk for b in context["batches"]]).update(
            status=BatchStatus.PROCESSED
        )
        context["provenance"], context["uploaded_files"] = provenance, computed

    try:
        for result in context["computed_files"]:
            if "stored" in result:  # already in permanent storage (add_stored_result)
                stored.append((result, result["stored"]))
                continue
            path: Path = result["path"]
            stored.append((result, storage.put_file(path, result_key(job, path.name))))
        record_success(context, record)
    except BaseException:
        for _result, obj in stored:
            try:
                storage.delete(obj.key)
            except StorageError:
                logger.exception("could not remove %s after a failed upload", obj.key)
        raise
    return context


def cleanup_raw_files(context: ProcessorContext) -> ProcessorContext:
    """Remove from temporary storage every input whose batches are all processed:
    no other job needs it any more."""
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


def processor_steps(
    own_steps: Iterable[Step],
    checks: Iterable[Step] = (),
    fetch_inputs: bool = True,
    upload: Step = upload_processed_files,
) -> list[Step]:
    """A pipeline's own steps inside the shared skeleton (see the module
    docstring). `checks` run before the job directory is made and the inputs are
    fetched, so a job that cannot succeed fails before it copies gigabytes;
    `upload` is `upload_processed_files`, or a step of the pipeline's that
    calls it."""
    before = [start_job, begin_processing, *checks, prepare_job_dir]
    if fetch_inputs:
        before.append(fetch_raw_files)
    return [*before, *own_steps, upload, discard_earlier_attempts_files, cleanup_raw_files]


def run_processor(
    job: ProcessorJob,
    own_steps: Iterable[Step],
    checks: Iterable[Step] = (),
    fetch_inputs: bool = True,
    upload: Step = upload_processed_files,
    **initial: Any,
) -> ProcessorContext:
    """Run a processor pipeline's own steps inside the shared skeleton."""
    steps = processor_steps(own_steps, checks, fetch_inputs, upload)
    return run_pipeline(job, steps, **initial)
