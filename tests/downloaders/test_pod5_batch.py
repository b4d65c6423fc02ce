"""The pod5_batch downloader: a batch of a run's pod5 files (real files written by
the `pod5` package) copied into temporary storage, each checked with the `pod5`
package; a damaged file fails its batch's job for good, naming it, and the run's
other batches go on."""

from __future__ import annotations

import pytest

from common.models import Batch, DownloaderJob, JobState, OriginalFile, ProcessorJob
from common.storage import sha256_of_file, temporary_storage
from demo.nanopore_run import add_pod5, finish_run, make_nanopore_run, new_run
from downloaders.pod5_batch import DamagedPod5, pod5_read_count
from runner.registry import work_for
from tests.attacks import run_queued_jobs
from tests.nanopore import survey_nanopore

pytestmark = pytest.mark.django_db(transaction=True)


def damage_footer(path) -> None:
    """Overwrite bytes near the end (the Arrow footer), keeping both signatures."""
    data = bytearray(path.read_bytes())
    at = int(len(data) * 0.8)
    data[at : at + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))


def test_each_file_is_stored_with_its_size_sha256_and_read_count(tmp_path, refinery_dirs, settings):
    settings.REFINERY_POD5_BATCH_FILES = 2
    run = make_nanopore_run(tmp_path / "minknow", files=3, reads=5)
    survey_nanopore(tmp_path / "minknow")
    downloads = [j for j in run_queued_jobs() if j.kind == "downloader"]
    assert [j.state for j in downloads] == [JobState.SUCCEEDED] * 2
    storage = temporary_storage()
    for original in OriginalFile.objects.all():
        source = run.pod5_folder / original.filename
        assert original.is_downloaded
        assert original.size == source.stat().st_size
        assert original.sha256 == sha256_of_file(source)
        assert storage.exists(original.temp_key)
    for batch in Batch.objects.all():
        counts = batch.metadata["pod5_files"]
        assert {name: entry["reads"] for name, entry in counts.items()} == {
            f.filename: 5 for f in batch.original_files.all()
        }
        assert [j.pipeline for j in ProcessorJob.objects.filter(batches=batch)] == ["basecalling"]


def test_a_damaged_pod5_fails_its_batch_for_good_and_the_rest_goes_on(
    tmp_path, refinery_dirs, settings
):
    settings.REFINERY_POD5_BATCH_FILES = 1
    run = new_run(tmp_path / "minknow")
    add_pod5(run)
    corrupt = add_pod5(run)
    damage_footer(corrupt)  # both signatures intact: the survey cannot tell
    finish_run(run)
    survey_nanopore(tmp_path / "minknow")
    assert Batch.objects.count() == 2
    for job in DownloaderJob.objects.order_by("id"):
        assert job.mark_started("test-worker", "test")
        work_for(job)(job)
    good, bad = DownloaderJob.objects.order_by("id")
    assert good.state == JobState.SUCCEEDED
    assert bad.state == JobState.FAILED and bad.no_retry
    assert bad.failure_reason.startswith(f"{corrupt.name} (file://{corrupt}) is a damaged pod5")
    assert "the pod5 package cannot read it" in bad.failure_reason
    assert not OriginalFile.objects.get(filename=corrupt.name).is_downloaded
    # The good batch's basecalling is queued; the damaged one's is not.
    assert ProcessorJob.objects.count() == 1


def test_the_check_tells_truncated_unfinished_and_foreign_files_apart(tmp_path):
    run = new_run(tmp_path / "minknow")
    whole = add_pod5(run, reads=3)
    assert pod5_read_count(whole) == 3
    truncated = tmp_path / "truncated.pod5"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(DamagedPod5, match="does not end with the pod5 signature"):
        pod5_read_count(truncated)
    foreign = tmp_path / "foreign.pod5"
    foreign.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    with pytest.raises(DamagedPod5, match="does not start with the pod5 signature"):
        pod5_read_count(foreign)
    damage_footer(whole)
    with pytest.raises(DamagedPod5, match="cannot read it"):
        pod5_read_count(whole)
