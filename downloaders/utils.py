"""The steps every downloader shares: starting the job, storing each file once,
and ending it, which on success creates the ProcessorJobs its batches need."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

from django.db import transaction

from common.job_lookup import JobKind
from common.message_queue import send_job
from common.models import (
    Batch,
    BatchStatus,
    DownloaderJob,
    JobState,
    OriginalFile,
    ProcessorJob,
)
from common.storage import StorageError, temporary_storage
from common.work_dirs import job_work_dir
from downloaders.fetch import DownloadError, fetch_url

logger = logging.getLogger(__name__)


class DownloaderJobError(Exception):
    """A downloader's failure, with the reason an operator reads."""

    def __init__(self, reason: str, no_retry: bool = False):
        super().__init__(reason)
        self.reason, self.no_retry = reason, no_retry


def start_job(job_id: int) -> tuple[DownloaderJob, list[Batch], list[OriginalFile]]:
    """The running job, its batches, and the files they need (each once)."""
    job = DownloaderJob.objects.get(pk=job_id)
    if job.state != JobState.RUNNING:
        raise DownloaderJobError(
            f"downloader job {job.pk} is {job.state}, not running", no_retry=True
        )
    batches = list(job.batches.order_by("id"))
    files = list(OriginalFile.objects.filter(batches__in=batches).distinct().order_by("id"))
    return job, batches, files


def temp_key(job: DownloaderJob, original: OriginalFile) -> str:
    return f"downloader/job-{job.pk}/file-{original.pk}/{original.filename}"


def store_original_file(
    job: DownloaderJob,
    original: OriginalFile,
    verify: Callable[[OriginalFile, Path], None] | None = None,
) -> bool:
    """Fetch one file, verify it, and put it in temporary storage, unless an
    earlier job already stored it. Returns whether it was fetched now."""
    original.refresh_from_db()
    storage = temporary_storage()
    if original.is_downloaded and original.temp_key and storage.exists(original.temp_key):
        print(f"{original.filename}: already in temporary storage", flush=True)
        return False
    staging = job_work_dir(JobKind.DOWNLOADER, job.pk) / f"file-{original.pk}" / original.filename
    try:
        fetch_url(original.source_url, staging, expected_size=original.expected_size)
        if verify:
            verify(original, staging)
        stored = storage.put_file(staging, temp_key(job, original))
    except DownloadError as error:
        raise DownloaderJobError(error.reason, no_retry=error.no_retry) from error
    except StorageError as error:
        raise DownloaderJobError(f"could not store {original.filename}: {error}") from error
    finally:
        shutil.rmtree(staging.parent, ignore_errors=True)
    original.record_download(stored.key, stored.size, stored.sha256)
    print(f"{original.filename}: {stored.size} bytes, sha256 {stored.sha256}", flush=True)
    return True


def end_job(
    job: DownloaderJob,
    batches: list[Batch],
    success: bool,
    reason: str = "",
    no_retry: bool = False,
) -> list[ProcessorJob]:
    """Record the outcome. On success, in one transaction: the batches are
    downloaded, each gets the ProcessorJob its `pipeline_required` calls for
    (unless one exists that has not failed), and the job succeeds; the new jobs
    are sent once that commits."""
    shutil.rmtree(job_work_dir(JobKind.DOWNLOADER, job.pk), ignore_errors=True)
    if not success:
        job.mark_failed(reason, no_retry)
        return []
    created = []
    with transaction.atomic():
        for batch in batches:
            batch.set_status(BatchStatus.DOWNLOADED)
            exists = (
                ProcessorJob.objects.filter(batches=batch, pipeline=batch.pipeline_required)
                .exclude(state=JobState.FAILED)
                .exists()
            )
            if exists:
                continue
            processor_job = ProcessorJob.objects.create(pipeline=batch.pipeline_required)
            processor_job.batches.add(batch)
            created.append(processor_job)
        if not job.mark_succeeded():
            # Finished elsewhere meanwhile (the Foreman gave up on it): create nothing.
            transaction.set_rollback(True)
            return []
        for processor_job in created:
            send_job(processor_job)
    return created


def run_downloader(job_id: int, verify: Callable[[OriginalFile, Path], None] | None = None) -> bool:
    """The whole downloader: every file of every batch fetched once, verified and
    stored, then the outcome recorded. Returns whether it succeeded."""
    job = DownloaderJob.objects.get(pk=job_id)
    batches: list[Batch] = []
    try:
        job, batches, files = start_job(job_id)
        if not files:
            raise DownloaderJobError("the job's batches list no files to download", True)
        for original in files:
            store_original_file(job, original, verify)
    except DownloaderJobError as error:
        end_job(job, batches, success=False, reason=error.reason, no_retry=error.no_retry)
        return False
    end_job(job, batches, success=True)
    return True
