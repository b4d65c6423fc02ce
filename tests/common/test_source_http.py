"""The policy for talking to a source over HTTP, part by part (the surveyor's and
the downloaders' tests attack it end to end through loopback servers).

Only IP literals and `localhost` appear here: nothing is resolved over the network
and nothing is connected to."""

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from common.shapes import ListOf, Maybe, ShapeError, Text, Whole, check
from common.source_http import (
    MAX_RETRY_AFTER_S,
    SourceHTTPError,
    address_kind,
    check_redirect,
    parse_retry_after,
    status_text,
)

NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("5", 5.0),
        ("0", 0.0),
        ("99999999999999", MAX_RETRY_AFTER_S),
        (format_datetime(NOW + timedelta(seconds=30), usegmt=True), 30.0),
        (format_datetime(NOW + timedelta(days=3), usegmt=True), MAX_RETRY_AFTER_S),
        (format_datetime(NOW - timedelta(hours=1), usegmt=True), 0.0),
        ("Fri, 01 May 2026 12:00:07 GMT", 7.0),
        ("Friday, 01-May-26 12:00:07 GMT", 7.0),  # RFC 850, which HTTP-date allows
        ("Fri May  1 12:00:07 2026", 7.0),  # asctime, likewise
        (None, 1.0),
        ("", 1.0),
        ("-5", 1.0),
        ("1.5", 1.0),
        ("soon", 1.0),
        ("Fri, 99 May 2026 99:99:99 GMT", 1.0),
    ],
)
def test_retry_after_in_both_forms_clamped(value, seconds):
    assert parse_retry_after(value, now=NOW) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("169.254.169.254", "link-local"),
        ("::ffff:169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("127.0.0.1", "loopback"),
        ("127.0.0.2", "loopback"),
        ("::1", "loopback"),
        ("0.0.0.0", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("100.64.0.1", "reserved"),
        ("8.8.8.8", "public"),
        ("2a00:1450::1", "public"),
    ],
)
def test_address_kinds(address, kind):
    assert address_kind(address) == kind


def refused(source: str, target: str) -> str:
    with pytest.raises(SourceHTTPError) as error:
        check_redirect(source, target)
    assert error.value.permanent
    return error.value.reason


def test_a_public_source_may_redirect_on_its_own_host():
    check_redirect("https://93.184.216.34/pub/x", "https://93.184.216.34:8443/mirror/x")
    check_redirect("http://93.184.216.34/pub/x", "https://93.184.216.34/pub/x")  # an upgrade


def test_a_public_source_may_not_redirect_elsewhere():
    reason = refused("https://93.184.216.34/pub/x", "https://93.184.216.35/pub/x?token=abc")
    assert reason.startswith("https://93.184.216.34/pub/x: redirected to 93.184.216.35, another")
    assert "REFINERY_SOURCE_REDIRECT_HOSTS" in reason and "token" not in reason


def test_https_never_becomes_http():
    reason = refused("https://93.184.216.34/x", "http://93.184.216.34/x")
    assert "another scheme (http)" in reason


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/latest/meta-data/",
        "http://2852039166/latest/meta-data/",  # 169.254.169.254 as one number
        "http://10.0.0.5/admin",
        "http://127.0.0.1:5432/",
        "http://localhost/",
        "http://0.0.0.0:8000/",
    ],
)
def test_an_allowed_host_must_still_be_public_for_a_public_source(settings, target):
    from urllib.parse import urlsplit

    settings.REFINERY_SOURCE_REDIRECT_HOSTS = [urlsplit(target).hostname]
    reason = refused("http://93.184.216.34/pub/x", target)
    assert "address; a source may lead there only when its own host is one" in reason


def test_a_loopback_source_may_redirect_within_loopback_but_not_to_link_local(settings):
    settings.REFINERY_SOURCE_REDIRECT_HOSTS = ["localhost", "169.254.169.254"]
    check_redirect("http://127.0.0.1:8000/x", "http://localhost:9000/y")
    assert "a link-local address" in refused("http://127.0.0.1:8000/x", "http://169.254.169.254/")


def test_a_redirect_setting_may_name_a_domain(settings):
    settings.REFINERY_SOURCE_REDIRECT_HOSTS = [".localhost"]
    refused("http://127.0.0.1/x", "http://localhost/y")  # ".localhost" is its subdomains only
    settings.REFINERY_SOURCE_REDIRECT_HOSTS = ["LocalHost"]
    check_redirect("http://127.0.0.1/x", "http://localhost/y")


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ("file:///etc/passwd", "another scheme (file)"),
        ("gopher://93.184.216.34/", "another scheme (gopher)"),
        ("http:///x", "a URL without a host"),
    ],
)
def test_odd_targets_are_refused(target, problem):
    assert problem in refused("http://93.184.216.34/x", target)


def test_status_text_uses_the_standard_phrase():
    assert status_text(503) == "HTTP 503 Service Unavailable"
    assert status_text(599) == "HTTP 599"


# --- shapes ---------------------------------------------------------------------------------------

NAME = Text("a production name", r"[a-z_]+", 20)
GENOME = {"name": NAME, "taxon": Maybe(Whole())}


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"genomes": [{"name": 123}]}, "genomes[0].name is a whole number, not a production name"),
        ({"genomes": [{"name": "Bad Name"}]}, "genomes[0].name is not a production name"),
        ({"genomes": [{"name": "x" * 21}]}, "genomes[0].name is longer than 20 characters"),
        ({"genomes": [{"name": "a", "taxon": "9x"}]},
         "genomes[0].taxon is a string, not a whole number"),
        ({"genomes": [{"name": "a", "taxon": True}]},
         "genomes[0].taxon is true or false, not a whole number"),
        ({"genomes": [{}]}, "genomes[0].name is missing"),
        ({"genomes": [{"name": None}]}, "genomes[0].name is null"),
        ({"genomes": {}}, "genomes is an object, not a list"),
        ([], "the answer is a list, not an object"),
    ],
)  # fmt: skip
def test_a_shape_error_names_the_field_and_quotes_nothing(answer, message):
    with pytest.raises(ShapeError) as error:
        check(answer, {"genomes": ListOf(GENOME)})
    assert str(error.value) == message


def test_a_good_answer_passes_and_extra_keys_are_ignored():
    check({"genomes": [{"name": "a", "taxon": "9606", "other": [1]}, {"name": "b"}]},
          {"genomes": ListOf(GENOME)})  # fmt: skip
