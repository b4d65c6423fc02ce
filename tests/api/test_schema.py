"""The API's OpenAPI schema: every endpoint described, without a warning, and
Swagger UI served from this server (drf-spectacular's sidecar: no CDN)."""

import json

import pytest
from django.contrib.staticfiles import finders
from django.urls import URLPattern, URLResolver

from api.urls import router
from tests.admin.test_browser import browser  # noqa: F401 (the fixture)

pytestmark = pytest.mark.django_db


def test_the_schema_generates_and_validates_without_a_warning(manage, tmp_path):
    """`manage.py spectacular --validate --fail-on-warn` fails on any warning or
    error (an endpoint it cannot describe, a filter whose type it cannot tell,
    two names for one set of choices) and on a schema that is not valid OpenAPI."""
    schema = tmp_path / "schema.json"
    result = manage("spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json",
                    "--file", schema)  # fmt: skip
    assert "Warning" not in result.stderr and "Error" not in result.stderr
    paths = json.loads(schema.read_text())["paths"]
    assert "/api/runs/{run_id}/" in paths and "/api/stats/" in paths and "/api/" in paths


def every_api_path() -> set[str]:
    """The API's URL patterns written as OpenAPI paths (`{id}`, `{run_id}`)."""
    found = {"/api/", "/api/stats/"}
    for pattern in router.urls:
        assert isinstance(pattern, URLPattern | URLResolver)
        route = str(pattern.pattern).lstrip("^").rstrip("$")
        if "format" in route:
            continue
        for name in ("pk", "run_id"):
            route = route.replace(f"(?P<{name}>[^/.]+)", "{id}").replace(
                f"(?P<{name}>[^/]+)", "{" + name + "}"
            )
        found.add("/api/" + route)
    return found


def test_every_endpoint_is_in_the_schema_with_its_filters(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert every_api_path() <= set(schema["paths"])
    runs = schema["paths"]["/api/runs/"]["get"]
    parameters = {p["name"]: p for p in runs["parameters"]}
    assert {"state", "instrument", "since", "flowcell", "platform", "limit", "offset"} <= set(
        parameters
    )
    assert "archived" in parameters["state"]["schema"]["enum"]
    assert "ISO 8601" in parameters["since"]["description"]
    stats = schema["paths"]["/api/stats/"]["get"]
    assert [p["name"] for p in stats["parameters"]] == ["window"]
    detail = schema["components"]["schemas"]["SequencingRunDetail"]["properties"]
    assert {"history", "batches", "archive", "links"} <= set(detail)


def test_the_docs_page_needs_no_network(client):
    html = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in html and "/api/schema/" in html
    assert "https://" not in html and "http://" not in html  # no CDN
    for asset in ("swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css"):
        assert f"/static/drf_spectacular_sidecar/swagger-ui-dist/{asset}" in html
        assert finders.find(f"drf_spectacular_sidecar/swagger-ui-dist/{asset}"), asset


@pytest.mark.browser
@pytest.mark.postgres_only
def test_swagger_ui_renders_every_endpoint_offline(live_server, browser):  # noqa: F811
    """A real headless Chromium (which has no network here: a CDN would fail)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{live_server.url}/api/docs/")
    wait = WebDriverWait(browser, 20)
    wait.until(expected_conditions.presence_of_element_located((By.ID, "operations-tag-runs")))
    text = browser.find_element(By.TAG_NAME, "body").text
    assert "/api/runs/{run_id}/" in text and "/api/stats/" in text
