"""The ENA surveyor against an ENA-shaped server on loopback."""

import pytest
from django.core.management import CommandError, call_command

from common.models import (
    Batch,
    DownloaderJob,
    Experiment,
    JobState,
    OriginalFile,
    Sample,
    SkippedRun,
    SurveyJob,
)
from demo.ena_server import ServedRun
from tests.ena_fixtures import STUDY, with_index
from tests.ensembl_fixtures import serve

pytestmark = pytest.mark.django_db(transaction=True)


def survey(*args):
    call_command("survey", "ena", *args)
    return SurveyJob.objects.order_by("-id").first()


def failed_survey(*args) -> tuple[str, SurveyJob]:
    with pytest.raises(CommandError) as error:
        survey(*args)
    return str(error.value), SurveyJob.objects.order_by("-id").first()


def extra_run(ena, number: int, **fields) -> ServedRun:
    template = ena.runs[0]
    run = ServedRun(
        run=f"SRR91000{number}", study=STUDY, sample=f"SAMN9100000{number}",
        experiment=f"SRX91000{number}", scientific_name=template.scientific_name,
        tax_id=template.tax_id, files=list(template.files), read_count=200,
    )  # fmt: skip
    for name, value in fields.items():
        setattr(run, name, value)
    ena.runs.append(run)
    return run


@pytest.mark.parametrize("answer_format", ["tsv", "json"])
def test_a_study_becomes_one_batch_per_run(ena, answer_format):
    with_index()
    job = survey("--study", STUDY, "--format", answer_format)
    assert job.state == JobState.SUCCEEDED
    batches = Batch.objects.filter(source="ena").order_by("accession")
    assert [b.accession for b in batches] == [f"SRR90000{n}" for n in range(1, 5)]
    assert {b.pipeline_required for b in batches} == {"salmon_quant"}
    assert [b.metadata["layout"] for b in batches] == ["SINGLE", "SINGLE", "PAIRED", "PAIRED"]
    assert batches[0].metadata["mean_read_length"] == 75
    paired = batches[3].original_files.order_by("filename")
    assert [f.filename for f in paired] == ["SRR900004_1.fastq.gz", "SRR900004_2.fastq.gz"]
    served = dict(ena.runs[3].files)
    for original in paired:
        assert original.source_url == (
            f"{ena.fastq_url}/vol1/fastq/SRR900/004/SRR900004/{original.filename}"
        )
        assert original.expected_size == len(served[original.filename])
        assert len(original.expected_checksums["md5"]) == 32
    downloads = DownloaderJob.objects.all()
    assert downloads.count() == 4 and {d.downloader_task for d in downloads} == {"fastq"}
    assert all(d.state == JobState.QUEUED and d.batches.count() == 1 for d in downloads)
    study = Experiment.objects.get()
    assert (study.accession, study.alternate_accession) == (STUDY, "SRP900001")
    samples = Sample.objects.order_by("accession")
    assert [s.accession for s in samples] == [f"SAMN9000000{n}" for n in range(1, 5)]
    assert all(s.organism.scientific_name == "Refinery demonstrans" for s in samples)
    assert samples[0].title == "demo sample SAMN90000001" and samples[0].platform == "ILLUMINA"
    assert samples[0].experiments.get() == study
    assert samples[2].batches.get().accession == "SRR900003"


def test_one_run_and_surveying_again(ena):
    with_index()
    survey("--run", "SRR900002")
    assert list(Batch.objects.filter(source="ena").values_list("accession", flat=True)) == [
        "SRR900002"
    ]
    survey("--study", STUDY)
    survey("--study", STUDY)
    assert Batch.objects.filter(source="ena").count() == 4
    assert DownloaderJob.objects.count() == 4 and Sample.objects.count() == 4


def test_runs_the_pipeline_cannot_use_are_skipped_with_the_reason(ena, capsys):
    with_index()
    extra_run(ena, 1, strategy="WGS")
    extra_run(ena, 2, source="GENOMIC")
    extra_run(ena, 3, platform="OXFORD_NANOPORE")
    extra_run(ena, 4, files=[])
    extra_run(ena, 5, scientific_name="Homo sapiens", tax_id=9606)
    job = survey("--study", STUDY)
    assert job.state == JobState.SUCCEEDED
    skipped = dict(SkippedRun.objects.filter(survey_job=job).values_list("accession", "reason"))
    assert skipped == {
        "SRR910001": "library_strategy is 'WGS', not RNA-Seq",
        "SRR910002": "library_source is 'GENOMIC', not TRANSCRIPTOMIC",
        "SRR910003": "instrument_platform is 'OXFORD_NANOPORE', not ILLUMINA",
        "SRR910004": "ENA has no FASTQ files for it",
        "SRR910005": "no transcriptome index for 'Homo sapiens' and none to be had: "
        "Ensembl has no genome of that name (--ensembl-division names a division to survey "
        "for it)",
    }
    assert Batch.objects.filter(source="ena").count() == 4
    out = capsys.readouterr().out
    assert "skipped run SRR910001: library_strategy is 'WGS'" in out and "5 run(s) skipped" in out


def test_an_organism_ensembl_does_not_know_is_skipped(ena, tmp_path, settings):
    serve(tmp_path / "empty", settings, [])  # Ensembl's REST API knows no genome
    job = survey("--study", STUDY)
    assert job.state == JobState.SUCCEEDED and not Batch.objects.filter(source="ena").exists()
    reasons = set(SkippedRun.objects.values_list("reason", flat=True))
    assert len(reasons) == 1
    assert reasons.pop().startswith("no transcriptome index for 'Refinery demonstrans'")


def test_only_the_organism_asked_for(ena):
    with_index()
    extra_run(ena, 1, scientific_name="Homo sapiens", tax_id=9606)
    job = survey("--study", STUDY, "--organism", "refinery demonstrans")
    assert SkippedRun.objects.get(survey_job=job).reason == (
        "its organism is 'Homo sapiens', not Refinery demonstrans"
    )
    assert Batch.objects.filter(source="ena").count() == 4


def test_an_unknown_accession_is_named(ena):
    message, job = failed_survey("--study", "PRJNA123")
    assert "ENA has no runs for the accession PRJNA123" in message
    assert job.state == JobState.FAILED and job.no_retry


def test_a_malformed_accession_is_refused_before_any_job(ena):
    with pytest.raises(CommandError, match="--run must be a run accession"):
        survey("--run", "PRJNA1")
    assert not SurveyJob.objects.exists()


@pytest.mark.same_on_every_database  # waits out the HTTP backoff; nothing database-specific
def test_ena_answering_5xx_is_retried(ena):
    with_index()
    ena.fail_next(2, status=503)
    assert survey("--study", STUDY).state == JobState.SUCCEEDED
    assert ena.requests.count("/ena/portal/api/filereport") == 3


@pytest.mark.same_on_every_database  # waits out the HTTP backoff; nothing database-specific
def test_ena_failing_every_time_fails_the_survey_with_the_reason(ena):
    ena.fail_next(10, status=502)
    message, job = failed_survey("--study", STUDY)
    assert "HTTP 502 Bad Gateway (gave up after 4 attempts)" in message
    assert job.state == JobState.FAILED and not job.no_retry
    assert ena.requests.count("/ena/portal/api/filereport") == 4


@pytest.mark.same_on_every_database  # waits out the HTTP backoff; nothing database-specific
def test_slow_ena_times_out_and_fails(ena, settings):
    settings.REFINERY_HTTP_TIMEOUT_S = 0.3
    ena.delay_s = 1
    message, _ = failed_survey("--run", "SRR900001")
    assert "timed out" in message and "gave up after 4 attempts" in message


@pytest.mark.parametrize(
    "fields, problem",
    [
        ({"fastq_md5": ""}, "fastq_md5 lists 0 sum(s) for 1 file(s)"),
        ({"fastq_md5": "abc;def"}, "fastq_md5 lists 2 sum(s) for 1 file(s)"),
        ({"fastq_bytes": ""}, "fastq_bytes lists 0 size(s) for 1 file(s)"),
        ({"fastq_md5": "z" * 32}, "fastq_md5 holds something that is not an MD5"),
        ({"fastq_bytes": "-1"}, "fastq_bytes holds something that is not a size"),
        ({"library_layout": "PAIRED"}, "a paired run needs _1 and _2 files, ENA lists 0"),
    ],
)
def test_a_broken_record_is_refused_and_the_rest_recorded(ena, fields, problem):
    with_index()
    extra_run(ena, 1, fields=fields)
    message, job = failed_survey("--study", STUDY)
    assert f"run SRR910001: {problem}" in message
    assert job.state == JobState.FAILED and job.no_retry
    assert Batch.objects.filter(source="ena").count() == 4
    assert not Batch.objects.filter(accession="SRR910001").exists()
    assert not OriginalFile.objects.filter(source_url__contains="SRR910001").exists()


def test_a_paired_run_with_one_file_is_refused(ena):
    with_index()
    extra_run(ena, 1, layout="PAIRED", files=[("SRR910001_1.fastq.gz", b"x")])
    message, _ = failed_survey("--run", "SRR910001")
    assert "run SRR910001: a paired run needs _1 and _2 files, ENA lists 1" in message


def test_without_an_index_the_ensembl_survey_is_queued_once_and_the_runs_recorded(ena):
    survey("--study", STUDY, "--ensembl-division", "EnsemblFungi")
    job = SurveyJob.objects.get(source="ena")
    assert job.state == JobState.SUCCEEDED and not SkippedRun.objects.exists()
    assert Batch.objects.filter(source="ena").count() == 4
    [ensembl] = SurveyJob.objects.filter(source="ensembl")
    assert ensembl.parameters == {
        "division": "EnsemblFungi", "species": ["refinery_demonstrans"], "release": None,
    }  # fmt: skip
    assert ensembl.state == JobState.QUEUED
    survey("--run", "SRR900001", "--ensembl-division", "EnsemblFungi")
    assert SurveyJob.objects.filter(source="ensembl").count() == 1


def test_without_a_division_given_the_survey_asks_ensembl_which_publishes_the_organism(ena):
    survey("--study", STUDY)
    assert Batch.objects.filter(source="ena").count() == 4 and not SkippedRun.objects.exists()
    [ensembl] = SurveyJob.objects.filter(source="ensembl")
    assert ensembl.parameters["division"] == "EnsemblFungi"
    assert ensembl.parameters["species"] == ["refinery_demonstrans"]


def test_ensembl_failing_to_answer_fails_the_survey_saying_so(ena, tmp_path, settings):
    server = serve(tmp_path / "down", settings, [])
    server.stop()  # nothing listens at ENSEMBL_REST_URL any more
    message, job = failed_survey("--study", STUDY)
    assert "/info/genomes/refinery_demonstrans" in message
    assert not job.no_retry, "a source that is down is worth retrying"
