"""A processor fetching its inputs never builds a path from a stored file name
that is not one plain name: rows stored before names were checked at survey
time cannot make it write outside its work directory."""

from __future__ import annotations

import pytest

from common.models import Batch, BatchStatus, ComputedFile, JobState, OriginalFile, ProcessorJob
from common.storage import temporary_storage
from tests.attacks import make_sentinel, run_queued_jobs, snapshot


def stage(filename: str, tmp_path) -> ProcessorJob:
    """A downloaded file named `filename` and a file_summary job that needs it."""
    source = tmp_path / "served.txt"
    source.write_text("served bytes\n")
    original = OriginalFile.objects.create(source_url=source.as_uri(), filename=filename)
    stored = temporary_storage().put_file(source, f"downloader/job-1/file-{original.pk}/x.txt")
    original.record_download(stored.key, stored.size, stored.sha256)
    batch = Batch.objects.create(
        source="local_files", accession="x", pipeline_required="file_summary",
        status=BatchStatus.DOWNLOADED,
    )  # fmt: skip
    batch.original_files.add(original)
    job = ProcessorJob.objects.create(pipeline="file_summary")
    job.batches.add(batch)
    job.mark_queued()
    return job


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["absolute", "up"])
def test_fetching_inputs_writes_nothing_outside_the_work_directory(refinery_dirs, tmp_path, kind):
    sentinel = make_sentinel(tmp_path)
    before = snapshot(sentinel)
    # From work/processor_job_<id>/raw, three levels up is tmp_path.
    name = f"{sentinel}/evil.txt" if kind == "absolute" else "../../../sentinel/evil.txt"
    stage(name, tmp_path)
    [job] = run_queued_jobs()
    assert snapshot(sentinel) == before
    assert job.state == JobState.FAILED and job.no_retry, job.failure_reason
    assert repr(name) in job.failure_reason and "not one plain file name" in job.failure_reason
    assert not ComputedFile.objects.exists()
