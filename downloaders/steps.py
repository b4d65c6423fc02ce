"""The downloader pipeline: every downloader task is the same steps around its
own verification.

    start_job, prepare_job_dir, require_files,
    for each file not yet in temporary storage: fetch_file, <the task's checks>, store_file,
    queue_processor_jobs

Files are fetched, checked and stored one at a time, so a file stored before a
later one fails stays stored and a retry does not fetch it again. A task's
check is a step that reads `context["original"]` (the OriginalFile) and
`context["staged"]` (where it was fetched) and raises JobError when the file is
not what the source promised. On success, one transaction marks the batches
downloaded, creates the ProcessorJobs they need and records the job's success;
the new jobs are sent once it commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from common.models import (
    BatchStatus,
    DownloaderJob,
    JobState,
    OriginalFile,
    ProcessorJob,
)
from common.secrets import with_credentials
from common.storage import StorageError, temporary_storage
from downloaders.fetch import fetch_url
from runner.dispatch import send_job
from runner.pipeline import JobContext, JobError, Step, record_success, run_pipeline, step_name
from runner.registry import source_base_urls
from runner.steps import checked_filename, prepare_job_dir, start_job
from runner.work_dirs import work_path


class DownloaderContext(JobContext, total=False):
    """The keys every downloader shares."""

    original: OriginalFile  # the file being downloaded now
    staged: Path | None  # where it was fetched, in the work directory; None when already stored
    processor_jobs: list[ProcessorJob]  # created on success


def temp_key(job: DownloaderJob, original: OriginalFile) -> str:
    """Where a file waits for its processors: under the job's and the file's ids,
    by its name once that is checked to be one plain name."""
    return f"downloader/job-{job.pk}/file-{original.pk}/{checked_filename(original)}"


def require_files(context: DownloaderContext) -> DownloaderContext:
    if not context["original_files"]:
        raise JobError("the job's batches list no files to download", no_retry=True)
    return context


def fetch_file(context: DownloaderContext) -> DownloaderContext:
    """Fetch the file into the work directory, unless an earlier job already
    stored it. The staging path is built from the file's id, never its name."""
    original = context["original"]
    original.refresh_from_db()
    storage = temporary_storage()
    if original.is_downloaded and original.temp_key and storage.exists(original.temp_key):
        print(f"{original.filename}: already in temporary storage", flush=True)
        context["staged"] = None
        return context
    staged = work_path(context["work_dir"], f"file-{original.pk}")
    # A private mirror's credentials come from its setting, never from the row.
    url = with_credentials(original.source_url, source_base_urls())
    try:
        context["staged"] = fetch_url(
            url, staged, expected_size=original.expected_size, max_size=size_cap(original)
        )
    except JobError as error:
        raise JobError(error.reason.replace(url, original.source_url), error.no_retry) from None
    return context


def size_cap(original: OriginalFile) -> int | None:
    """The most bytes the source said the file has: its exact size if it gave one, else
    what the block count of its BSD sum allows (Ensembl's CHECKSUMS); None if unknown.
    A download stops there, before it writes a byte more."""
    if original.expected_size is not None:
        return original.expected_size
    try:
        _, blocks = (int(x) for x in original.expected_checksums.get("bsd_sum", "").split())
    except ValueError:
        return None  # no sum (or a damaged one, which the task's check reports)
    return blocks * 1024  # a BSD sum counts 1024-byte blocks, rounded up


def store_file(context: DownloaderContext) -> DownloaderContext:
    """Put the checked file in temporary storage and record its size and SHA-256."""
    original, staged = context["original"], context["staged"]
    try:
        stored = temporary_storage().put_file(staged, temp_key(context["job"], original))
    except StorageError as error:
        raise JobError(f"could not store {original.filename}: {error}") from error
    finally:
        staged.unlink(missing_ok=True)
    original.record_download(stored.key, stored.size, stored.sha256)
    print(f"{original.filename}: {stored.size} bytes, sha256 {stored.sha256}", flush=True)
    return context


def for_each_file(steps: Iterable[Step]) -> Step:
    """One step that runs `steps` for each of the job's files in turn; the steps
    after `fetch_file` are skipped for a file already stored."""
    steps = list(steps)

    def download_each_file(context: DownloaderContext) -> DownloaderContext:
        for original in context["original_files"]:
            context["original"] = original
            for step in steps:
                if step is not fetch_file and context.get("staged") is None:
                    break
                try:
                    context = step(context)
                except JobError:
                    raise
                except Exception as error:
                    raise JobError(
                        f"step {step_name(step)} failed for {original.filename}: "
                        f"{type(error).__name__}: {error}"
                    ) from error
        return context

    return download_each_file


def queue_processor_jobs(context: DownloaderContext) -> DownloaderContext:
    """In one transaction: the batches are downloaded, each gets the ProcessorJob
    its `pipeline_required` calls for (unless one exists that has not failed),
    and the job succeeds; the new jobs are sent once that commits."""
    created: list[ProcessorJob] = []

    def record() -> None:
        for batch in context["batches"]:
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
        for processor_job in created:
            send_job(processor_job)

    record_success(context, record)
    context["processor_jobs"] = created
    return context


def run_downloader(
    job: DownloaderJob, checks: Iterable[Step] = (), after_store: Iterable[Step] = ()
) -> DownloaderContext:
    """The whole downloader: every file of every batch fetched once, checked by
    the task's `checks` and stored (then the task's `after_store` steps, which
    may record what the checks found), then the processors queued."""
    return run_pipeline(
        job,
        [
            start_job,
            prepare_job_dir,
            require_files,
            for_each_file([fetch_file, *checks, store_file, *after_store]),
            queue_processor_jobs,
        ],
    )
