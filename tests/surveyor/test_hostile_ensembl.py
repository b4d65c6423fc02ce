"""The Ensembl surveyor against a hostile or broken Ensembl: redirects to other
hosts, bodies that must not reach a failure reason, oversized and malformed
answers, and `Retry-After` in both of its forms.

Each test puts a hostile server on loopback in front of the demo Ensembl
stand-in: it answers the paths a test names and forwards the rest."""

import email.utils
import gzip
import time

import pytest
from django.core.management import CommandError, call_command

from common.models import Batch, DownloaderJob, JobState, SurveyJob
from tests.ensembl_fixtures import FUNGI, VERTEBRATES
from tests.hostile_http import HostileServer

pytestmark = pytest.mark.django_db(transaction=True)

GENOMES = "/rest/info/genomes/division/EnsemblFungi"
EG_VERSION = "/rest/info/eg_version"
LEAK = "leaked-secret-7f3a"  # what a hostile source puts in a body, hoping to see it shown


@pytest.fixture
def hostile(ensembl, settings):
    """A hostile server in front of the demo Ensembl, standing for all of Ensembl."""
    server = HostileServer(upstream=ensembl.base_url).start()
    settings.ENSEMBL_REST_URL = f"{server.url}/rest"
    settings.ENSEMBL_FTP_URL = f"{server.url}/ftp"
    settings.ENSEMBL_GENOMES_FTP_URL = f"{server.url}/ftp-genomes"
    yield server
    server.stop()


@pytest.fixture
def other_host(ensembl):
    """Another host (127.0.0.2) that serves the same Ensembl: a redirect there must not be
    followed unless a setting allows it."""
    server = HostileServer(host="127.0.0.2", upstream=ensembl.base_url).start()
    yield server
    server.stop()


def failed_survey(*args) -> SurveyJob:
    with pytest.raises(CommandError):
        call_command("survey", "ensembl", "--division", FUNGI, *args)
    job = SurveyJob.objects.order_by("-id").first()
    assert job.state == JobState.FAILED, job.state
    assert not Batch.objects.exists() and not DownloaderJob.objects.exists()
    return job


def survey(*args) -> SurveyJob:
    call_command("survey", "ensembl", "--division", FUNGI, *args)
    job = SurveyJob.objects.order_by("-id").first()
    assert job.state == JobState.SUCCEEDED, job.failure_reason
    return job


# --- redirects ----------------------------------------------------------------------------------


def test_a_redirect_to_another_host_is_refused(hostile, other_host):
    hostile.redirect(EG_VERSION, f"{other_host.url}/rest/info/eg_version?{LEAK}")
    job = failed_survey()
    assert other_host.hits() == 0
    assert "/rest/info/eg_version" in job.failure_reason
    assert "redirected to 127.0.0.2" in job.failure_reason
    assert "REFINERY_SOURCE_REDIRECT_HOSTS" in job.failure_reason
    assert LEAK not in job.failure_reason and job.no_retry


def test_a_redirect_to_a_link_local_address_is_refused(hostile, settings):
    # Even a host the setting allows: a loopback source may not lead to a link-local address
    # (fe80::1 stands for 169.254.169.254: without a scope it is never reached, not even if
    # this test failed).
    settings.REFINERY_SOURCE_REDIRECT_HOSTS = ["fe80::1"]
    hostile.redirect(EG_VERSION, "http://[fe80::1]/latest/meta-data/iam/")
    job = failed_survey()
    assert "redirected to fe80::1" in job.failure_reason
    assert "link-local" in job.failure_reason and job.no_retry
    assert hostile.hits(EG_VERSION) == 1  # refused at once, not retried


def test_a_redirect_within_the_source_is_followed(hostile):
    hostile.redirect(EG_VERSION, f"{hostile.url}/rest/info/eg_version/", status=301)
    hostile.redirect(GENOMES, "/rest/info/genomes/division/EnsemblFungi/", status=307)
    survey()
    assert Batch.objects.count() == 4
    assert hostile.hits(EG_VERSION + "/") == 1 and hostile.hits(GENOMES + "/") == 1


def test_a_redirect_to_an_allowed_host_is_followed(hostile, other_host, settings):
    settings.REFINERY_SOURCE_REDIRECT_HOSTS = ["127.0.0.2"]
    hostile.redirect(EG_VERSION, f"{other_host.url}/rest/info/eg_version")
    survey()
    assert other_host.hits("/rest/info/eg_version") == 1


def test_a_redirect_to_another_scheme_is_refused(hostile):
    hostile.redirect(EG_VERSION, "file:///etc/passwd")
    job = failed_survey()
    assert "redirected to another scheme (file)" in job.failure_reason and job.no_retry


def test_a_redirect_loop_ends(hostile):
    hostile.redirect(EG_VERSION, EG_VERSION)
    job = failed_survey()
    assert "too many redirects" in job.failure_reason
    assert hostile.hits(EG_VERSION) < 10


# --- bodies never reach a failure reason --------------------------------------------------------


def test_an_error_body_is_not_copied_into_the_reason(hostile):
    hostile.answer_json(EG_VERSION, {"error": LEAK}, status=400)
    job = failed_survey()
    assert "/rest/info/eg_version" in job.failure_reason and "HTTP 400" in job.failure_reason
    assert LEAK not in job.failure_reason


@pytest.mark.same_on_every_database  # waits out the HTTP backoff; nothing database-specific
def test_a_custom_reason_phrase_is_not_copied_into_the_reason(hostile):
    hostile.answer(EG_VERSION, 503, b"", reason=LEAK)
    job = failed_survey()
    assert "HTTP 503 Service Unavailable" in job.failure_reason
    assert LEAK not in job.failure_reason


def test_an_answer_without_the_release_names_the_field_not_the_body(hostile):
    hostile.answer_json(EG_VERSION, {"version": "", "note": LEAK})
    job = failed_survey()
    assert "/info/eg_version" in job.failure_reason and "version" in job.failure_reason
    assert LEAK not in job.failure_reason


def test_an_answer_that_is_not_json_says_its_content_type_and_size(hostile):
    page = f"<html>{LEAK}</html>".encode()
    hostile.answer(EG_VERSION, 200, page, headers={"Content-Type": "text/html"})
    job = failed_survey()
    assert "not JSON" in job.failure_reason and "text/html" in job.failure_reason
    assert f"{len(page)} bytes" in job.failure_reason
    assert LEAK not in job.failure_reason


def test_a_species_table_with_a_bad_header_is_not_quoted(hostile):
    hostile.answer("/ftp-genomes/fungi/release-61/species_EnsemblFungi.txt", 200,
                   f"#{LEAK}\tnothing\n".encode())  # fmt: skip
    job = failed_survey()
    assert "species_EnsemblFungi.txt" in job.failure_reason
    assert "'species' and 'core_db' columns" in job.failure_reason
    assert LEAK not in job.failure_reason


# --- sizes --------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_oversized_answer_fails_clearly(hostile, settings, chunked):
    settings.REFINERY_MAX_RESPONSE_BYTES = 64 * 1024
    body = b"[" + b" " * 1_000_000 + b"]"  # valid JSON, one megabyte
    hostile.answer(GENOMES, 200, body, headers={"Content-Type": "application/json"},
                   chunked=chunked)  # fmt: skip
    job = failed_survey()
    assert "/rest/info/genomes/division/EnsemblFungi" in job.failure_reason
    assert "larger than 65536 bytes (REFINERY_MAX_RESPONSE_BYTES)" in job.failure_reason


def test_a_compressed_answer_is_capped_once_decoded(hostile, settings):
    settings.REFINERY_MAX_RESPONSE_BYTES = 64 * 1024
    body = gzip.compress(b"[" + b" " * 10_000_000 + b"]")  # ~10 KB on the wire, 10 MB decoded
    assert len(body) < 64 * 1024
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    hostile.answer(GENOMES, 200, body, headers=headers)
    job = failed_survey()
    assert "larger than 65536 bytes" in job.failure_reason
    assert hostile.requests_to(GENOMES)[0].headers.get("Accept-Encoding") == "identity"


def test_an_oversized_listing_fails_clearly(hostile, settings):
    settings.REFINERY_MAX_RESPONSE_BYTES = 64 * 1024
    checksums = "/ftp-genomes/fungi/release-61/fasta/refinery_demonstrans/dna/CHECKSUMS"
    hostile.answer(checksums, 200, b"1 1 x.dna.toplevel.fa.gz\n" * 10_000)
    job = failed_survey("--species", "refinery_demonstrans")
    assert "CHECKSUMS" in job.failure_reason and "larger than 65536 bytes" in job.failure_reason


# --- malformed answers --------------------------------------------------------------------------


def test_a_species_whose_name_is_not_text_fails_the_survey_clearly(hostile):
    hostile.answer_json(GENOMES, [{"name": 123}])
    job = failed_survey()
    assert job.failure_reason == (
        "Ensembl REST /info/genomes/division/EnsemblFungi: [0].name is a whole number, "
        "not a production name"
    )


@pytest.mark.parametrize(
    ("path", "payload", "field", "problem"),
    [
        (GENOMES, {"genomes": []}, "the answer", "is an object, not a list"),
        (GENOMES, ["saccharomyces_cerevisiae"], "[0]", "is a string, not an object"),
        (GENOMES, [{"name": "a/../b"}], "[0].name", "not a production name"),
        (GENOMES, [{"name": "x", "taxonomy_id": "nine"}], "[0].taxonomy_id",
         "not a whole number"),
        (GENOMES, [{"name": "x", "assembly_default": "../../x"}], "[0].assembly_default",
         "not a plain name"),
        (GENOMES, [{"name": "x", "dbname": ["x_core_1"]}], "[0].dbname", "is a list"),
        (GENOMES, [{"display_name": "X"}], "[0]", "has neither name nor species"),
        (EG_VERSION, {"version": 61.5}, "version", "not a whole number"),
        (EG_VERSION, [], "the answer", "is a list, not an object"),
        (EG_VERSION, {"release": "61"}, "version", "is missing"),
    ],
)  # fmt: skip
def test_a_malformed_answer_names_the_endpoint_and_field(hostile, path, payload, field, problem):
    hostile.answer_json(path, payload)
    job = failed_survey()
    assert job.failure_reason.startswith(f"Ensembl REST {path.removeprefix('/rest')}: {field} ")
    assert problem in job.failure_reason
    assert "Error" not in job.failure_reason  # no exception's name: a reason, not a crash


def test_a_malformed_vertebrate_species_list_fails_clearly(hostile):
    hostile.answer_json("/rest/info/species", {"species": [{"name": "x", "taxon_id": {}}]})
    with pytest.raises(CommandError):
        call_command("survey", "ensembl", "--division", VERTEBRATES)
    job = SurveyJob.objects.get()
    assert job.state == JobState.FAILED
    assert job.failure_reason == (
        "Ensembl REST /info/species: species[0].taxon_id is an object, not a whole number"
    )


def test_deeply_nested_json_fails_clearly(hostile):
    hostile.answer(GENOMES, 200, b"[" * 100_000 + b"]" * 100_000,
                   headers={"Content-Type": "application/json"})  # fmt: skip
    job = failed_survey()
    assert "nested too deeply" in job.failure_reason


# --- Retry-After --------------------------------------------------------------------------------


@pytest.mark.same_on_every_database  # waits out the HTTP backoff; nothing database-specific
def test_a_retry_after_in_http_date_form_is_honoured(hostile):
    # An HTTP date has whole seconds: 3 s ahead, truncated, is more than 2 s away.
    when = email.utils.formatdate(time.time() + 3, usegmt=True)
    hostile.answer_json(EG_VERSION, {"error": "slow down"}, status=429,
                        headers={"Retry-After": when}, times=1)  # fmt: skip
    survey()
    first, second = hostile.requests_to(EG_VERSION)
    # Waited as asked: the tests' backoff alone is 50 ms (REFINERY_HTTP_RETRY_WAIT_S).
    assert second.time - first.time >= 1.5


@pytest.mark.same_on_every_database  # waits out the HTTP backoff; nothing database-specific
def test_a_retry_after_in_seconds_is_honoured(hostile):
    hostile.answer_json(EG_VERSION, {}, status=429, headers={"Retry-After": "2"}, times=1)
    survey()
    first, second = hostile.requests_to(EG_VERSION)
    assert second.time - first.time >= 2.0


@pytest.mark.same_on_every_database  # waits out the HTTP backoff; nothing database-specific
def test_a_retry_after_that_makes_no_sense_falls_back_to_the_backoff(hostile):
    hostile.answer_json(EG_VERSION, {}, status=429, headers={"Retry-After": LEAK}, times=2)
    survey()
    assert hostile.hits(EG_VERSION) == 3
