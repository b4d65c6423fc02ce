"""A small job history for the admin and API tests: a failed job, its retry, a result."""

import io

import pytest

from common.models import (
    Batch,
    ComputedFile,
    DownloaderJob,
    Organism,
    OriginalFile,
    PausedKind,
    ProcessorJob,
    Provenance,
    SurveyJob,
    TranscriptomeIndex,
)
from foreman.models import ForemanBeat, Notification


@pytest.fixture
def history(db, refinery_dirs):
    """A failed processor job and its retry, with a batch, a file and a result."""
    from django.utils import timezone

    from common.storage import permanent_storage
    from runner.job_logs import log_key

    organism = Organism.objects.create(scientific_name="Refinery demonstrans", taxonomy_id=1)
    batch = Batch.objects.create(
        source="ensembl", accession="refinery_demonstrans", variant="31", organism=organism,
        pipeline_required="transcriptome_index_long",
    )  # fmt: skip
    original = OriginalFile.objects.create(source_url="http://x/g.fa.gz", filename="g.fa.gz")
    original.batches.add(batch)
    failed = ProcessorJob.objects.create(pipeline="transcriptome_index_long")
    failed.batches.add(batch)
    failed.mark_started("host:1", "1.0")
    failed.mark_failed("salmon exited with code 1: out of disk")
    permanent_storage().put_stream(io.BytesIO(b"salmon said hello\n"),
                                   log_key(failed))  # fmt: skip
    failed.set_log_location(permanent_storage().location(log_key(failed)))
    retry = failed.create_retry()
    retry.mark_started("host:2", "1.0")
    provenance = Provenance.objects.create(
        processor_job=retry, processor_name="transcriptome_index_long", processor_version="1",
        started_at=timezone.now(), ended_at=timezone.now(),
    )  # fmt: skip
    computed = ComputedFile.objects.create(
        key="processor/x/index.tar.gz", filename="index.tar.gz", format="tar.gz", size=1,
        sha256="0" * 64, processor_job=retry, provenance=provenance,
    )  # fmt: skip
    TranscriptomeIndex.objects.create(
        organism=organism, batch=batch, length="long", k=31, source_release="114",
        assembly="Demo1.0", salmon_version="1.10.1", computed_file=computed,
    )  # fmt: skip
    retry.mark_succeeded()
    SurveyJob.objects.create(source="ensembl", parameters={"division": "EnsemblFungi"})
    DownloaderJob.objects.create(downloader_task="transcriptome").batches.add(batch)
    Notification.objects.create(
        job_kind="processor", job_id=failed.pk, subject=f"gave up on {failed}", body="out of disk"
    )
    PausedKind.objects.create(kind="downloader", reason="archive maintenance")
    ForemanBeat.objects.create(name="host:1", passes=3)
    return {"failed": failed, "retry": retry}
