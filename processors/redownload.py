"""When a processor's inputs have left temporary storage (cleaned up, expired,
lost), another attempt cannot find them: the batches are downloaded again and
the pipeline is queued anew once they are, instead of failing for ever."""

from __future__ import annotations

from django.db import transaction

from common.models import BatchStatus, DownloaderJob, OriginalFile, ProcessorJob
from common.storage import temporary_storage
from runner.dispatch import send_job
from runner.registry import downloader_task_for


def missing_inputs(files: list[OriginalFile]) -> list[OriginalFile]:
    """The files that are not (any more) in temporary storage."""
    storage = temporary_storage()
    return [
        f for f in files if not f.is_downloaded or not f.temp_key or not storage.exists(f.temp_key)
    ]


@transaction.atomic
def download_again(job: ProcessorJob, missing: list[OriginalFile]) -> str:
    """In one transaction: forget the missing files' downloads, queue a downloader
    job for the job's batches (or reuse one already waiting or running for them)
    and fail this job without retry; once the downloader succeeds it queues the
    pipeline anew (it creates a processor job where none but failed ones exist,
    which is why this job fails in the same transaction). Returns the reason."""
    for original in missing:
        if original.is_downloaded:
            original.forget_download()
    batches = list(job.batches.all())
    waiting = DownloaderJob.objects.unfinished().filter(batches__in=batches).distinct()
    downloader = waiting.order_by("id").first()
    if downloader is None:
        downloader = DownloaderJob.objects.create(downloader_task=downloader_task_for(job.pipeline))
        downloader.batches.set(batches)
        for batch in batches:
            batch.set_status(BatchStatus.NEW)
        send_job(downloader)
    names = ", ".join(f.filename for f in missing)
    reason = (
        f"{names} left temporary storage: downloader job {downloader.pk} fetches "
        f"{'it' if len(missing) == 1 else 'them'} again and then queues this pipeline anew"
    )
    job.mark_failed(reason, no_retry=True)
    return reason
