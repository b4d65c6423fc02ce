"""The surveyor framework, through the local_files source."""

import pytest

from common.models import Batch, DownloaderJob, JobState, OriginalFile, SurveyJob
from surveyor.external_source import DiscoveredBatch, DiscoveredFile, ExternalSourceSurveyor


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    for i in range(40):
        (root / f"sample-{i:02}.txt").write_text(f"reads of sample {i}\n" * (i + 1))
    return root


@pytest.mark.django_db(transaction=True)
def test_two_surveys_at_once_create_each_batch_once(folder, start_manage):
    surveys = [start_manage("survey", "local_files", folder) for _ in range(2)]
    outputs = [s.communicate(timeout=120)[0] for s in surveys]
    assert [s.returncode for s in surveys] == [0, 0], outputs
    assert Batch.objects.count() == 40
    assert OriginalFile.objects.count() == 40
    assert DownloaderJob.objects.count() == 40
    for batch in Batch.objects.all():
        assert batch.downloader_jobs.count() == 1
    assert set(SurveyJob.objects.values_list("state", flat=True)) == {JobState.SUCCEEDED}


@pytest.mark.django_db(transaction=True)
def test_a_second_survey_finds_nothing_new(folder, manage):
    first = manage("survey", "local_files", folder)
    assert "40 new, 40 downloader job(s) queued" in first.stdout
    second = manage("survey", "local_files", folder)
    assert "40 batch(es) found, 0 new, 0 downloader job(s) queued" in second.stdout
    assert DownloaderJob.objects.filter(state=JobState.QUEUED).count() == 40


@pytest.mark.django_db(transaction=True)
def test_the_smallest_path_end_to_end(folder, manage):
    from common.models import BatchStatus, ComputedFile

    manage("survey", "local_files", folder, "--pattern", "sample-0*.txt")
    manage("worker", "--until-idle", "--concurrency", "2", timeout=300)
    assert Batch.objects.count() == 10
    assert set(Batch.objects.values_list("status", flat=True)) == {BatchStatus.PROCESSED}
    assert ComputedFile.objects.count() == 10
    # Raw files left temporary storage once processed.
    assert not OriginalFile.objects.filter(is_downloaded=True).exists()


@pytest.mark.django_db
def test_a_bad_folder_is_a_clear_error(manage, tmp_path):
    result = manage("survey", "local_files", tmp_path / "missing", check=False)
    assert result.returncode == 1
    assert "is not a folder" in result.stderr and "Traceback" not in result.stderr


class TwoSharedFiles(ExternalSourceSurveyor):
    source = "local_files"


def test_batches_sharing_files_are_grouped_into_one_download(db):
    genome = DiscoveredFile(url="http://x/genome.fa", filename="genome.fa")
    gtf = DiscoveredFile(url="http://x/genes.gtf", filename="genes.gtf")
    other = DiscoveredFile(url="http://x/other.fa", filename="other.fa")
    batches = [
        DiscoveredBatch("a", [genome], variant="31"),
        DiscoveredBatch("b", [other]),
        DiscoveredBatch("a", [gtf], variant="23"),
        DiscoveredBatch("c", [gtf, genome]),  # joins the two groups above
    ]
    groups = TwoSharedFiles(SurveyJob(source="local_files")).group_batches(batches)
    assert sorted(sorted(b.accession + b.variant for b in g) for g in groups) == [
        ["a23", "a31", "c"],
        ["b"],
    ]
