"""The `illumina_run` downloader task: a run folder, streamed as one compressed
tar archive into temporary storage, with its manifest beside it.

The survey gives each complete run two batches (`archive`, and `fastq` when the
run has a sample sheet) sharing this one job. The archive and the manifest are
the batches' two OriginalFiles: made here (the survey cannot know their size or
checksum), recorded as downloaded once stored, and shared by both batches, so
the temporary copy goes only once both batches are processed.

    start_job, find_run_folder, record_archive_files,
    discard_earlier_attempts_uploads, archive_run_folder, queue_processor_jobs

`common.run_archive` does the streaming; this module turns its errors into the
job's: a file that changed while it was read is retried (the folder is still
being written), a link out of the folder, a FIFO or an unreadable file is not
(an operator must act first).
"""

from __future__ import annotations

import logging
from pathlib import Path

from django.conf import settings
from django.db import transaction

from common.filenames import UnsafeName, check_name
from common.models import DownloaderJob, OriginalFile, SequencingRun
from common.progress import Progress
from common.run_archive import CODECS, ArchiveError, total_bytes, walk_run, write_run_archive
from common.storage import StorageError, temporary_storage
from downloaders.steps import DownloaderContext, queue_processor_jobs, temp_key
from runner.pipeline import JobError, run_pipeline
from runner.steps import discard_unrecorded_uploads, start_job

logger = logging.getLogger(__name__)

ARCHIVE, MANIFEST = "archive", "manifest"


class IlluminaRunContext(DownloaderContext, total=False):
    run: SequencingRun
    run_folder: Path
    archive_files: dict[str, OriginalFile]  # ARCHIVE / MANIFEST → its row
    manifest: dict


def find_run_folder(context: IlluminaRunContext) -> IlluminaRunContext:
    """The batches' one run, and its folder as the survey recorded it."""
    runs = {b.sequencing_run_id for b in context["batches"]}
    if None in runs or len(runs) != 1:
        raise JobError(
            "an illumina_run job's batches must all belong to one sequencing run "
            f"(they belong to {sorted(r for r in runs if r) or 'none'}): survey the folder again",
            no_retry=True,
        )
    run = SequencingRun.objects.get(pk=runs.pop())
    location = run.location or context["batches"][0].metadata.get("location", "")
    folder = Path(location)
    if not location or not folder.is_absolute():
        raise JobError(f"run {run.run_id} records no absolute folder ({location!r})", no_retry=True)
    if not folder.is_dir():
        raise JobError(
            f"run {run.run_id}: its folder {folder} is gone or not a folder: survey again",
            no_retry=True,
        )
    try:
        check_name(run.run_id, "the run id")
    except UnsafeName as error:
        raise JobError(str(error), no_retry=True) from None
    context.update(run=run, run_folder=folder)
    return context


def codec() -> str:
    name = settings.REFINERY_ARCHIVE_CODEC
    if name not in CODECS:
        raise JobError(
            f"REFINERY_ARCHIVE_CODEC is {name!r}: set it to one of {', '.join(CODECS)}",
            no_retry=True,
        )
    return name


def record_archive_files(context: IlluminaRunContext) -> IlluminaRunContext:
    """The archive's and the manifest's OriginalFiles, shared by every batch of
    the job (made once: their URLs are unique)."""
    run, folder, extension = context["run"], context["run_folder"], CODECS[codec()]
    url = folder.as_uri()
    names = {
        ARCHIVE: (f"{run.run_id}.{extension}", extension),
        MANIFEST: (f"{run.run_id}.manifest.json", "json"),
    }
    files = {}
    with transaction.atomic():
        for part, (filename, raw_format) in names.items():
            original, _ = OriginalFile.objects.get_or_create(
                source_url=f"{url}#{part}",
                defaults={"filename": filename, "raw_format": raw_format},
            )
            if original.filename != filename and not original.is_downloaded:
                original.filename, original.raw_format = filename, raw_format
                original.save(update_fields=["filename", "raw_format"])
            original.batches.add(*context["batches"])
            files[part] = original
    context["archive_files"] = files
    context["original_files"] = list(files.values())
    return context


def already_stored(files: dict[str, OriginalFile]) -> bool:
    storage = temporary_storage()
    for original in files.values():
        original.refresh_from_db()
        if not (original.is_downloaded and original.temp_key and storage.exists(original.temp_key)):
            return False
    return True


def discard_earlier_attempts_uploads(context: IlluminaRunContext) -> IlluminaRunContext:
    """Remove what earlier attempts of this job stored and never recorded (a
    worker killed between storing the archive and recording it leaves it)."""

    def recorded(attempt: DownloaderJob, prefix: str) -> set[str]:
        keys = OriginalFile.objects.filter(temp_key__startswith=prefix)
        return set(keys.values_list("temp_key", flat=True))

    discard_unrecorded_uploads(
        context["job"],
        temporary_storage(),
        lambda attempt: f"downloader/job-{attempt.pk}/",
        recorded,
    )
    return context


def archive_run_folder(context: IlluminaRunContext) -> IlluminaRunContext:
    """Stream the folder into temporary storage and record both files."""
    files, folder, job = context["archive_files"], context["run_folder"], context["job"]
    if already_stored(files):
        print(f"{context['run'].run_id}: already archived in temporary storage", flush=True)
        return context
    storage, name = temporary_storage(), codec()
    exclude = list(settings.REFINERY_ILLUMINA_ARCHIVE_EXCLUDE)
    keys = {part: temp_key(job, original) for part, original in files.items()}
    try:
        walked = walk_run(folder, exclude)
        with Progress(total_bytes(walked[0]), f"archiving {folder.name}") as bar:
            result = write_run_archive(
                folder, storage, keys[ARCHIVE], keys[MANIFEST], codec=name, exclude=exclude,
                progress=lambda n, _path: bar.advance(n), walked=walked,
            )  # fmt: skip
    except ArchiveError as error:
        raise JobError(f"{folder}: {error.reason}", no_retry=not error.retryable) from None
    except StorageError as error:
        raise JobError(f"could not store the archive of {folder}: {error}") from error
    except OSError as error:  # the folder vanished between the check and the walk
        raise JobError(f"{folder}: {error.strerror or error}") from None
    archive, manifest = result.archive, result.manifest_stored
    with transaction.atomic():  # both or neither: the archive is useless without its manifest
        files[ARCHIVE].record_download(archive.key, archive.size, archive.sha256)
        files[MANIFEST].record_download(manifest.key, manifest.size, manifest.sha256)
    totals = result.manifest["totals"]
    print(
        f"{context['run'].run_id}: {totals['files']} files, {totals['bytes']} bytes → "
        f"{archive.size} bytes ({name}), sha256 {archive.sha256}; "
        f"{len(result.manifest['excluded'])} paths excluded",
        flush=True,
    )
    context["manifest"] = result.manifest
    return context


def download_illumina_run(job: DownloaderJob) -> IlluminaRunContext:
    return run_pipeline(
        job,
        [
            start_job,
            find_run_folder,
            record_archive_files,
            discard_earlier_attempts_uploads,
            archive_run_folder,
            queue_processor_jobs,
        ],
    )
