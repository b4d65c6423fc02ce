"""Where a sequencing run's archive is, for the API and the admin."""

from __future__ import annotations

from common.models import ComputedFile, ProcessorPipeline, SequencingRun


def storage_url(key: str) -> str:
    """Where a stored result is, as a URL: `s3://bucket/key` on S3, `file:///…` in a
    local folder. Not a presigned link: whoever reads it needs access to the storage."""
    from common.storage import LocalStorage, permanent_storage

    storage = permanent_storage()
    return storage.url(key) if isinstance(storage, LocalStorage) else storage.location(key)


def archive_of(run: SequencingRun) -> ComputedFile | None:
    """The run's archive: the newest result of its `illumina_run_archive` batch."""
    files = [
        computed
        for batch in run.batches.all()
        if batch.pipeline_required == ProcessorPipeline.ILLUMINA_RUN_ARCHIVE
        for computed in batch.computed_files.all()
    ]
    return max(files, key=lambda f: f.pk, default=None)
