"""Production's HTTPS settings, on a real server: the redirect to https, HSTS, and
`X-Forwarded-Proto` trusted only behind a TLS proxy."""

from __future__ import annotations

import http.client

import pytest

from demo.services import free_port, wait_for_port
from tests.refinery.test_settings import PRODUCTION

HOST = "refinery.example.org"


@pytest.fixture
def production_server(start_manage, tmp_path):
    """Start `runserver` with production settings and these variables; answer
    GET /api/ as (status, headers) for a request with these headers."""

    def start(**variables):
        port = free_port()
        env = {**PRODUCTION, "REFINERY_HOME": str(tmp_path), **variables}
        start_manage("runserver", "--noreload", f"127.0.0.1:{port}", env=env)
        wait_for_port(port, timeout=60)

        def get(**headers) -> tuple[int, dict]:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                connection.request("GET", "/api/", headers={"Host": HOST, **headers})
                response = connection.getresponse()
                response.read()
                return response.status, {k.lower(): v for k, v in response.getheaders()}
            finally:
                connection.close()

        return get

    return start


def test_plain_http_is_redirected_to_https_and_a_forwarded_proto_is_not_trusted(
    production_server,
):
    get = production_server()
    status, headers = get()
    assert status == 301 and headers["location"] == f"https://{HOST}/api/"
    assert "strict-transport-security" not in headers
    status, headers = get(**{"X-Forwarded-Proto": "https"})
    assert status == 301, "X-Forwarded-Proto trusted without REFINERY_BEHIND_TLS_PROXY"


def test_behind_a_tls_proxy_https_requests_are_served_with_hsts(production_server):
    get = production_server(REFINERY_BEHIND_TLS_PROXY="1")
    status, headers = get(**{"X-Forwarded-Proto": "https"})
    assert status == 200
    hsts = headers["strict-transport-security"]
    assert hsts == "max-age=31536000; includeSubDomains; preload"
    assert get()[0] == 301  # what the proxy forwards as plain http is still redirected


def test_the_redirect_and_hsts_are_tuned_by_their_settings(production_server):
    get = production_server(
        REFINERY_BEHIND_TLS_PROXY="1",
        REFINERY_SSL_REDIRECT="0",
        REFINERY_HSTS_SECONDS="600",
        REFINERY_HSTS_PRELOAD="0",
    )
    status, headers = get()
    assert status == 200 and "strict-transport-security" not in headers
    status, headers = get(**{"X-Forwarded-Proto": "https"})
    assert status == 200
    assert headers["strict-transport-security"] == "max-age=600; includeSubDomains"
