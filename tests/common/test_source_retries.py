"""`fetch_answer`: the retries every source client shares, against a loopback
server that answers what each test tells it to."""

from __future__ import annotations

import pytest

from common.source_http import SourceGaveUp, SourceHTTPError, fetch_answer, new_session
from tests.hostile_http import HostileServer


@pytest.fixture
def source():
    with HostileServer() as server:
        yield server


def fetch(source: HostileServer, path: str, **options):
    return fetch_answer(source.url + path, session=new_session(), timeout=5, **options)


def test_transient_failures_are_tried_again_until_an_answer(source, settings):
    settings.REFINERY_HTTP_RETRY_WAIT_S = 0.01
    source.answer("/info", 503, b"busy", times=1)
    source.answer("/info", 429, b"slow down", headers={"Retry-After": "0"}, times=1)
    source.answer("/info", 200, b'{"ok": 1}', headers={"Content-Type": "application/json"})
    answer = fetch(source, "/info")
    assert (answer.status, answer.content_type) == (200, "application/json")
    assert answer.body == b'{"ok": 1}'
    assert source.hits("/info") == 3


def test_failures_that_outlast_the_attempts_say_the_last_one(source, settings):
    settings.REFINERY_HTTP_RETRY_WAIT_S = 0.01
    source.answer("/info", 502, b"<html>upstream said something</html>")
    with pytest.raises(SourceGaveUp) as error:
        fetch(source, "/info", attempts=3)
    assert str(error.value).endswith("/info: HTTP 502 Bad Gateway (gave up after 3 attempts)")
    assert "upstream said" not in str(error.value)  # nothing the source sent is quoted
    assert source.hits("/info") == 3


def test_a_status_the_caller_judges_is_answered_at_once_without_a_body(source):
    source.answer("/missing", 404, b"no such thing")
    answer = fetch(source, "/missing")
    assert (answer.status, answer.body) == (404, b"")
    assert source.hits("/missing") == 1


def test_a_permanent_failure_is_not_tried_again(source, settings):
    settings.REFINERY_MAX_RESPONSE_BYTES = 10
    source.answer("/big", 200, b"x" * 1000)
    with pytest.raises(SourceHTTPError) as error:
        fetch(source, "/big")
    assert error.value.permanent and not isinstance(error.value, SourceGaveUp)
    assert source.hits("/big") == 1
