"""The Ensembl surveyor against an Ensembl-shaped server on loopback."""

import pytest
from django.core.management import CommandError, call_command

from common.models import Batch, DownloaderJob, JobState, Organism, OriginalFile, SurveyJob
from tests.ensembl_fixtures import FUNGI, VERTEBRATES

pytestmark = pytest.mark.django_db(transaction=True)


def survey(*args):
    call_command("survey", "ensembl", *args)
    return SurveyJob.objects.order_by("-id").first()


def test_a_division_with_a_collection_folder(ensembl):
    job = survey("--division", FUNGI)
    assert job.state == JobState.SUCCEEDED
    root = f"{ensembl.divisions_ftp_url}/fungi/release-61"
    assert set(OriginalFile.objects.values_list("source_url", flat=True)) == {
        f"{root}/fasta/refinery_demonstrans/dna/Refinery_demonstrans.Demo1.0.dna.toplevel.fa.gz",
        f"{root}/gtf/refinery_demonstrans/Refinery_demonstrans.Demo1.0.61.gtf.gz",
        f"{root}/fasta/fungi_ascomycota1_collection/refinery_collectans/dna/"
        "Refinery_collectans.Demo1.0.dna.toplevel.fa.gz",
        f"{root}/gtf/fungi_ascomycota1_collection/refinery_collectans/"
        "Refinery_collectans.Demo1.0.61.gtf.gz",
    }
    # Two batches per species, k=31 and k=23, sharing their files in one download.
    for species in ("refinery_demonstrans", "refinery_collectans"):
        batches = Batch.objects.filter(accession=f"{species}@61").order_by("variant")
        assert [(b.variant, b.pipeline_required) for b in batches] == [
            ("23", "transcriptome_index_short"),
            ("31", "transcriptome_index_long"),
        ]
        assert batches[0].metadata["release"] == "61" and batches[0].metadata["k"] == 23
        assert batches[0].metadata["assembly"] == "Demo1.0"
        [download] = DownloaderJob.objects.filter(batches__in=batches).distinct()
        assert download.downloader_task == "transcriptome" and download.batches.count() == 2
        assert download.state == JobState.QUEUED
    files = OriginalFile.objects.filter(raw_format="fasta.gz")
    assert all(f.batches.count() == 2 and f.expected_checksums["bsd_sum"] for f in files)
    organism = Organism.objects.get(scientific_name="Refinery demonstrans")
    assert organism.taxonomy_id == 900_000_001


def test_vertebrates_use_the_primary_assembly_and_ensembl_release(ensembl):
    survey("--division", VERTEBRATES)
    root = f"{ensembl.ftp_url}/release-114"
    assert set(OriginalFile.objects.values_list("source_url", flat=True)) == {
        f"{root}/fasta/refinery_vertebratus/dna/"
        "Refinery_vertebratus.Demo1.0.dna.primary_assembly.fa.gz",
        f"{root}/gtf/refinery_vertebratus/Refinery_vertebratus.Demo1.0.114.gtf.gz",
    }
    assert Batch.objects.filter(accession="refinery_vertebratus@114").count() == 2


def test_surveying_again_creates_no_batch_file_or_job(ensembl):
    survey("--division", FUNGI)
    counts = (Batch.objects.count(), OriginalFile.objects.count(), DownloaderJob.objects.count())
    second = survey("--division", FUNGI, "--species", "refinery_demonstrans")
    assert second.state == JobState.SUCCEEDED
    assert counts == (
        Batch.objects.count(), OriginalFile.objects.count(), DownloaderJob.objects.count(),
    ) == (4, 4, 2)  # fmt: skip


def test_species_may_be_chosen_by_display_name(ensembl):
    survey("--division", FUNGI, "--species", "refinery collectans (demo organism)")
    assert set(Batch.objects.values_list("accession", flat=True)) == {"refinery_collectans@61"}


def test_an_unknown_species_names_the_closest_matches(ensembl):
    with pytest.raises(CommandError) as error:
        survey("--division", FUNGI, "--species", "refinery_demonstrns")
    assert "unknown species: 'refinery_demonstrns'" in str(error.value)
    assert "did you mean refinery_demonstrans" in str(error.value)
    job = SurveyJob.objects.get()
    assert job.state == JobState.FAILED and job.no_retry
    assert not Batch.objects.exists()


def test_a_given_release_is_used_as_is(ensembl):
    with pytest.raises(CommandError, match="no genome FASTA or GTF in Ensembl release 60"):
        survey("--division", FUNGI, "--release", "60", "--species", "refinery_demonstrans")
    assert ensembl.request_count("/info/eg_version") == 0


@pytest.mark.same_on_every_database  # waits out the HTTP backoff; nothing database-specific
def test_a_source_that_keeps_failing_fails_the_survey_with_url_and_status(ensembl):
    ensembl.fail_path("/info/eg_version", status=500)
    with pytest.raises(CommandError) as error:
        survey("--division", FUNGI)
    assert "/rest/info/eg_version" in str(error.value) and "HTTP 500" in str(error.value)
    assert "gave up after 4 attempts" in str(error.value)
    assert ensembl.request_count("/info/eg_version") == 4


def test_a_brief_failure_is_retried(ensembl):
    ensembl.fail_path("/info/genomes/division/EnsemblFungi", status=503, times=1)
    assert survey("--division", FUNGI).state == JobState.SUCCEEDED
    assert Batch.objects.count() == 4


def test_without_checksums_files_are_found_by_ensembls_naming(ensembl):
    ensembl.fail_path("CHECKSUMS", status=404)
    survey("--division", FUNGI, "--species", "refinery_demonstrans")
    files = OriginalFile.objects.order_by("filename")
    assert [f.filename for f in files] == [
        "Refinery_demonstrans.Demo1.0.61.gtf.gz",
        "Refinery_demonstrans.Demo1.0.dna.toplevel.fa.gz",
    ]
    assert all(f.expected_checksums == {} for f in files)


def test_an_unknown_division_is_refused_by_the_command(manage):
    result = manage("survey", "ensembl", "--division", "EnsemblMars", check=False)
    assert result.returncode == 2
    assert "invalid choice: 'EnsemblMars'" in result.stderr and "EnsemblFungi" in result.stderr
    assert "Traceback" not in result.stderr
