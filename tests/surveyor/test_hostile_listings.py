"""A hostile Ensembl mirror: `CHECKSUMS` files that name paths instead of files,
or are huge. Nothing may be written or deleted outside a job's work directory,
nothing unsafe is stored, and the survey fails with a reason that names the line."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from common.bsd_sum import bsd_sum_path, format_sum_line
from common.filenames import shorten
from common.models import Batch, JobState, OriginalFile, SurveyJob
from tests.attacks import make_sentinel, run_queued_jobs, snapshot
from tests.ensembl_fixtures import FUNGI

pytestmark = pytest.mark.django_db(transaction=True)
GENOME = "Refinery_demonstrans.Demo1.0.dna.toplevel.fa.gz"
SUFFIX = ".dna.toplevel.fa.gz"


def genome_folder(server) -> str:
    return f"{server.divisions_ftp_url}/fungi/release-61/fasta/refinery_demonstrans/dna"


def list_genome_as(server, name: str) -> None:
    """Put a first line in the genome folder's CHECKSUMS that names the real
    genome's bytes `name`, and serve those bytes where a client that joins the
    folder's URL and `name` would ask for them."""
    folder = genome_folder(server)
    genome = server.local_path(f"{folder}/{GENOME}")
    checksum, blocks = bsd_sum_path(genome)
    listing = server.local_path(f"{folder}/CHECKSUMS").read_text()
    hostile = format_sum_line(checksum, blocks, name) + listing
    server.override_file(f"{folder}/CHECKSUMS", hostile.encode())
    server.override_file(f"{folder}/{name}", genome)


def survey_demonstrans() -> str:
    """Survey the one species; the command's error, if it failed."""
    try:
        call_command("survey", "ensembl", "--division", FUNGI, "--species", "refinery_demonstrans")
    except CommandError as error:
        return str(error)
    return ""


def assert_refused(error: str, name: str, server) -> None:
    job = SurveyJob.objects.get()
    assert job.state == JobState.FAILED and job.no_retry, job.failure_reason
    assert error and job.failure_reason in error
    assert shorten(name) in job.failure_reason
    assert f"{genome_folder(server)}/CHECKSUMS line 1" in job.failure_reason
    assert "Traceback" not in job.failure_reason
    assert not Batch.objects.exists()
    assert not OriginalFile.objects.exists()


def test_an_absolute_path_in_checksums_reaches_nothing_outside(ensembl, tmp_path):
    sentinel = make_sentinel(tmp_path)
    before = snapshot(sentinel)
    name = f"{sentinel}/x{SUFFIX}"
    list_genome_as(ensembl, name)
    error = survey_demonstrans()
    ran = run_queued_jobs()
    assert sentinel.is_dir() and snapshot(sentinel) == before, "a job wrote into the sentinel"
    assert_refused(error, name, ensembl)
    assert ran == []


def test_a_path_up_the_tree_in_checksums_reaches_nothing_outside(ensembl, tmp_path, settings):
    sentinel = make_sentinel(tmp_path)
    before = snapshot(sentinel)
    name = f"../../../x{SUFFIX}"
    list_genome_as(ensembl, name)
    error = survey_demonstrans()
    run_queued_jobs()
    assert snapshot(sentinel) == before
    # raw/../../../x from a processor's work directory lands beside REFINERY_WORK_DIR.
    assert not (Path(settings.REFINERY_WORK_DIR).parent / f"x{SUFFIX}").exists()
    assert_refused(error, name, ensembl)


@pytest.mark.parametrize(
    "name, why",
    [
        ("A" * 300 + SUFFIX, "longer than 255 bytes"),
        (f".hidden{SUFFIX}", "starts with '.'"),
        (f"A\x07{SUFFIX}", "control character"),
        (f"A\\slash{SUFFIX}", "'\\\\'"),
    ],
    ids=["too-long", "hidden", "control", "backslash"],
)
def test_names_that_are_not_one_plain_name_are_refused(ensembl, name, why):
    # Listed only (the stand-in's tree cannot hold most of these names), and
    # sorted before the genome's own name, so that the surveyor chooses them.
    folder = genome_folder(ensembl)
    listing = ensembl.local_path(f"{folder}/CHECKSUMS").read_text()
    ensembl.override_file(f"{folder}/CHECKSUMS", (format_sum_line(1, 1, name) + listing).encode())
    error = survey_demonstrans()
    assert_refused(error, name, ensembl)
    assert why in SurveyJob.objects.get().failure_reason


@pytest.mark.parametrize(
    "name, collection, why",
    [("../../x", "", "its name is not a plain name: it contains '/'"),
     ("fine_name", "../up", "its collection is not a plain name: it contains '/'"),
     (123, "", "its name is not a plain name: it is a int, not text")],
)  # fmt: skip
def test_species_whose_names_would_make_paths_are_refused(name, collection, why):
    from surveyor.ensembl import EnsemblSurveyor
    from surveyor.ensembl_client import EnsemblSpecies

    surveyor = EnsemblSurveyor(SurveyJob(source="ensembl"))
    species = EnsemblSpecies(name, "x", "x", None, "x")
    assert not surveyor.names_plain_folders(species, {name: collection} if collection else {})
    assert surveyor.result.refused == [f"species {name!r}: {why}"]


def test_a_name_with_url_characters_is_fetched_as_that_name(ensembl):
    """'?', '#' and '%' are allowed in a file name: the URL quotes them, so the
    download asks for that file, not a shorter path with a query."""
    name, quoted = f"A?b#c%41{SUFFIX}", f"A%3Fb%23c%2541{SUFFIX}"
    folder = genome_folder(ensembl)
    genome = ensembl.local_path(f"{folder}/{GENOME}")
    listing = ensembl.local_path(f"{folder}/CHECKSUMS").read_text()
    line = format_sum_line(*bsd_sum_path(genome), name)
    ensembl.override_file(f"{folder}/CHECKSUMS", (line + listing).encode())
    ensembl.override_file(f"{folder}/{quoted}", genome)
    assert not survey_demonstrans()
    stored = OriginalFile.objects.get(filename=name)
    assert stored.source_url == f"{folder}/{quoted}"
    [downloader, *_] = run_queued_jobs()
    assert downloader.state == JobState.SUCCEEDED, downloader.failure_reason
