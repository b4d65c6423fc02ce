"""A job's results and its success are one transaction: a worker killed in
between leaves no result, the retry records exactly one set, and inputs that
left temporary storage are downloaded again rather than failing for ever."""

import os
import time

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction

from common.models import (
    Batch,
    ComputedFile,
    DownloaderJob,
    JobState,
    Organism,
    ProcessorJob,
    Provenance,
    TranscriptomeIndex,
)
from common.storage import permanent_storage, temporary_storage
from runner.registry import work_for
from runner.supervisor import Supervisor

pytestmark = pytest.mark.django_db(transaction=True)


def smoke_job() -> ProcessorJob:
    batch = Batch.objects.create(
        source="local_files", accession="s", pipeline_required="smoke_test"
    )
    job = ProcessorJob.objects.create(pipeline="smoke_test")
    job.batches.add(batch)
    return job


def run_supervised(job) -> None:
    assert job.mark_started("test-worker", "1")
    supervisor = Supervisor()
    supervisor.launch(job)
    deadline = time.monotonic() + 60
    while supervisor.busy and time.monotonic() < deadline:
        supervisor.poll()
        time.sleep(0.05)


def test_a_worker_killed_between_its_results_and_its_success_leaves_no_result(
    refinery_dirs, monkeypatch
):
    """The attack: a worker killed after the results were saved but before the
    job ended left results tied to a failed attempt, and the retry made a second
    set. Here the kill lands once every result row is written, as the job is
    about to be marked succeeded."""
    mark_succeeded = ProcessorJob.mark_succeeded

    def die(self):
        os._exit(137)  # the kernel's OOM killer, say

    monkeypatch.setattr(ProcessorJob, "mark_succeeded", die)
    job = smoke_job()
    run_supervised(job)
    job.refresh_from_db()
    assert job.state == JobState.FAILED and job.exit_code == 137
    assert not ComputedFile.objects.exists() and not Provenance.objects.exists()
    stray = list(permanent_storage().list(f"processor/smoke_test/job-{job.pk}/"))
    assert stray  # stored, never recorded

    monkeypatch.setattr(ProcessorJob, "mark_succeeded", mark_succeeded)
    retry = job.create_retry()
    run_supervised(retry)
    retry.refresh_from_db()
    assert retry.state == JobState.SUCCEEDED
    assert list(ComputedFile.objects.values_list("processor_job", flat=True)) == [retry.pk]
    # What the killed attempt stored is gone; the retry's results are all that is left.
    assert list(permanent_storage().list(f"processor/smoke_test/job-{job.pk}/")) == []


def test_a_batch_cannot_have_two_transcriptome_indices(refinery_dirs):
    organism = Organism.get_or_create_by_name("Refinery demonstrans", 1)
    batch = Batch.objects.create(
        source="ensembl", accession="x@61", variant="31", pipeline_required="smoke_test"
    )
    for n in range(2):
        job = ProcessorJob.objects.create(pipeline="transcriptome_index_long")
        provenance = Provenance.objects.create(
            processor_job=job, processor_name="p", processor_version="1",
            started_at="2026-01-01T00:00Z", ended_at="2026-01-01T00:00Z",
        )  # fmt: skip
        tarball = ComputedFile.objects.create(
            key=f"k{n}", filename="i.tar.gz", format="tar.gz", size=1, sha256="0" * 64,
            processor_job=job, provenance=provenance,
        )  # fmt: skip
        fields = dict(
            organism=organism, batch=batch, length="long", k=31, source_release="61",
            assembly="A", salmon_version="1", computed_file=tarball,
        )  # fmt: skip
        if n == 0:
            TranscriptomeIndex.objects.create(**fields)
            continue
        with pytest.raises(IntegrityError), transaction.atomic():
            TranscriptomeIndex.objects.create(**fields)
    assert TranscriptomeIndex.objects.count() == 1


def test_inputs_gone_from_temporary_storage_are_downloaded_again(refinery_dirs, tmp_path):
    folder = tmp_path / "incoming"
    folder.mkdir()
    (folder / "reads.txt").write_text("ACGT\n")
    call_command("survey", "local_files", str(folder))
    downloader = DownloaderJob.objects.get()
    assert downloader.mark_started("test-worker", "1")
    work_for(downloader)(downloader)
    processor = ProcessorJob.objects.get()
    [original] = processor.batches.get().original_files.all()
    temporary_storage().delete(original.temp_key)  # expired, or cleaned up by hand

    assert processor.mark_started("test-worker", "1")
    work_for(processor)(processor)
    processor.refresh_from_db()
    assert processor.state == JobState.FAILED and processor.no_retry
    again = DownloaderJob.objects.exclude(pk=downloader.pk).get()
    assert "reads.txt left temporary storage" in processor.failure_reason
    assert f"downloader job {again.pk}" in processor.failure_reason

    assert again.mark_started("test-worker", "1")
    work_for(again)(again)
    anew = ProcessorJob.objects.exclude(pk=processor.pk).get()
    assert anew.mark_started("test-worker", "1")
    work_for(anew)(anew)
    anew.refresh_from_db()
    assert anew.state == JobState.SUCCEEDED
    assert ComputedFile.objects.filter(processor_job=anew).count() == 1
