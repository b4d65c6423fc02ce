"""The `illumina_run_archive` pipeline: a run's archive, from temporary storage
into permanent storage, verified.

    checks: find_archive, read_manifest (before the job directory is made)
    own step: copy_and_verify_archive
    then the shared upload step records the archive and its manifest as
    results with their provenance

The archive is copied inside the storage (a server-side copy on S3, a hard link
between local folders), never through the job directory, then read back from
permanent storage and checked against its manifest: every member's size and
SHA-256, nothing missing or extra, and the archive's own SHA-256 against the
one recorded when it was written. The run moves to `archived` when the job
succeeds (`JOB_RULES`); the temporary copy goes once every batch of the run is
processed (`cleanup_raw_files`), as an Ensembl species' raw files do.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import logging

from common.models import OriginalFile, ProcessorJob
from common.progress import Progress
from common.run_archive import ArchiveError, codec_version, load_manifest, verify_archive
from common.storage import StorageError, permanent_storage, temporary_storage
from processors.pipeline import ProcessorContext, add_stored_result, result_key, run_processor
from processors.redownload import download_again, missing_inputs
from runner.pipeline import JobError

logger = logging.getLogger(__name__)


class ArchiveContext(ProcessorContext, total=False):
    archive: OriginalFile
    manifest_file: OriginalFile
    manifest: dict
    manifest_body: bytes


def part_of(original: OriginalFile) -> str:
    return original.source_url.rsplit("#", 1)[-1]


def find_archive(context: ArchiveContext) -> ArchiveContext:
    """The archive and its manifest among the job's inputs, both still in
    temporary storage (else they are archived again, as any lost input is)."""
    parts = {part_of(f): f for f in context["original_files"]}
    if "archive" not in parts or "manifest" not in parts:
        raise JobError(
            "the batch has no run archive and manifest: run its illumina_run downloader job",
            no_retry=True,
        )
    missing = missing_inputs([parts["archive"], parts["manifest"]])
    if missing:
        raise JobError(download_again(context["job"], missing), no_retry=True)
    context.update(archive=parts["archive"], manifest_file=parts["manifest"])
    return context


def read_manifest(context: ArchiveContext) -> ArchiveContext:
    original = context["manifest_file"]
    try:
        with contextlib.closing(temporary_storage().open(original.temp_key)) as stream:
            body = stream.read()
    except StorageError as error:
        raise JobError(f"cannot read {original.filename}: {error}") from error
    if hashlib.sha256(body).hexdigest() != original.sha256:
        raise JobError(
            f"{original.filename} in temporary storage does not match the SHA-256 recorded when "
            "it was written: archive the run again",
            no_retry=True,
        )
    try:
        manifest = load_manifest(io.BytesIO(body), original.filename)
    except ArchiveError as error:
        raise JobError(error.reason, no_retry=True) from None
    context.update(manifest=manifest, manifest_body=body)
    return context


def copy_and_verify_archive(context: ArchiveContext) -> ArchiveContext:
    """Copy the archive and store the manifest in permanent storage, then read
    the copy back against the manifest; a copy that fails is removed."""
    job: ProcessorJob = context["job"]
    archive, manifest_file, manifest = (
        context["archive"], context["manifest_file"], context["manifest"],
    )  # fmt: skip
    storage = permanent_storage()
    keys = [result_key(job, archive.filename), result_key(job, manifest_file.filename)]
    try:
        copied = storage.copy_from(temporary_storage(), archive.temp_key, keys[0])
        stored_manifest = storage.put_stream(io.BytesIO(context["manifest_body"]), keys[1])
        total, label = manifest["totals"]["bytes"], f"verifying {archive.filename}"
        with Progress(total, label) as bar, contextlib.closing(storage.open(copied.key)) as stream:
            checked = verify_archive(stream, manifest, lambda n, _p: bar.advance(n))
        if (checked.archive_sha256, checked.archive_size) != (archive.sha256, archive.size):
            raise ArchiveError(
                f"the copy in permanent storage has SHA-256 {checked.archive_sha256} and "
                f"{checked.archive_size} bytes; {archive.sha256} and {archive.size} were recorded "
                "when the archive was written"
            )
    except BaseException as error:
        for key in keys:
            try:
                storage.delete(key)
            except StorageError:
                logger.warning("could not remove %s after a failed verification", key)
        if isinstance(error, ArchiveError | StorageError):
            reason = error.reason if isinstance(error, ArchiveError) else str(error)
            raise JobError(f"{archive.filename}: {reason}") from None
        raise
    copied = dataclasses.replace(copied, sha256=checked.archive_sha256)
    add_stored_result(context, copied, archive.raw_format)
    add_stored_result(context, stored_manifest, "json")
    codec = manifest["codec"]
    context["tools"].update(codec_version(codec))
    context["parameters"].update(
        run_folder=manifest["run_folder"],
        codec=codec,
        files=checked.files,
        bytes=checked.bytes,
        archive_size=checked.archive_size,
        archive_sha256=checked.archive_sha256,
        manifest_sha256=manifest_file.sha256,
        exclude=manifest.get("exclude", []),
        excluded=len(manifest.get("excluded", [])),
        verified="every member's size and SHA-256 read back from permanent storage",
    )
    print(
        f"{archive.filename}: {checked.files} files, {checked.bytes} bytes verified in "
        f"{storage.location(copied.key)}",
        flush=True,
    )
    return context


def archive_run(job: ProcessorJob) -> ArchiveContext:
    return run_processor(
        job, [copy_and_verify_archive], checks=[find_archive, read_manifest], fetch_inputs=False
    )
