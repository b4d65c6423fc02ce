"""Secrets stay out of Django's error reports (the debug page, the admins' email)
and of the logs: masked by name (TOKEN, PASS, SECRET, KEY, WEBHOOK) and, in any
URL, the password."""

from __future__ import annotations

import sys

import pytest
from django.core import mail
from django.test import RequestFactory
from django.views.debug import get_exception_reporter_class

from common.models import Organism
from tests.refinery.test_settings import run_manage

DATABASE_URL = "postgres://refinery:db-pass-98765@db.internal:5432/refinery"
SECRETS = {
    "REFINERY_NOTIFY_WEBHOOK": "https://hooks.example.org/services/notify-webhook-path",
    "MY_WEBHOOK": "https://hooks.example.org/services/my-webhook-path",
    "REFINERY_FOO_TOKEN": "foo-token-value-0123456789",
    "REFINERY_NOMAD_TOKEN": "nomad-token-value-0123456789",
}
AUTH_TOKEN = "auth-token-1357"
SECRET_VALUES = [*SECRETS.values(), "db-pass-98765", "ftp-pass-4321", "frame-pass-2468"]


@pytest.fixture
def secret_settings(settings):
    for name, value in SECRETS.items():
        setattr(settings, name, value)
    settings.ENSEMBL_FTP_URL = "ftp://mirror:ftp-pass-4321@mirror.example.org/pub"
    return settings


def explode(*args, **kwargs):
    """Fails with secrets in its local variables and in its message."""
    source_url = "https://reader:frame-pass-2468@mirror.example.org/pub"  # noqa: F841
    notify_webhook = SECRETS["MY_WEBHOOK"]  # noqa: F841
    raise RuntimeError(f"could not reach {DATABASE_URL}")


def assert_masked(text: str) -> None:
    for secret in SECRET_VALUES:
        assert secret not in text
    assert "********" in text


def test_the_exception_reporter_masks_secrets(secret_settings):
    request = RequestFactory().get(
        "/api/organisms/", DATABASE_URL=DATABASE_URL, HTTP_AUTHORIZATION=f"Token {AUTH_TOKEN}"
    )
    try:
        explode()
    except RuntimeError:
        reporter = get_exception_reporter_class(request)(request, *sys.exc_info())
    html, text = reporter.get_traceback_html(), reporter.get_traceback_text()
    for report in (html, text):
        assert_masked(report)
        assert AUTH_TOKEN not in report
        # The settings and the request are still there, only the secrets are not.
        assert "REFINERY_NOTIFY_WEBHOOK" in report and "ENSEMBL_FTP_URL" in report
        assert "mirror.example.org/pub" in report
    assert "postgres://refinery:********@db.internal:5432/refinery" in text


@pytest.mark.django_db
def test_the_debug_page_of_a_failing_view_masks_secrets(client, secret_settings, monkeypatch):
    secret_settings.DEBUG = True
    monkeypatch.setattr(Organism.objects, "count", explode)
    client.raise_request_exception = False
    # `runserver` puts its whole environment into each request's META.
    response = client.get("/api/stats/", DATABASE_URL=DATABASE_URL, **SECRETS)
    assert response.status_code == 500
    page = response.content.decode()
    assert "could not reach postgres://refinery:********@db.internal" in page
    assert_masked(page)


@pytest.mark.django_db
def test_the_admins_error_email_masks_secrets(client, secret_settings, monkeypatch):
    secret_settings.DEBUG = False
    secret_settings.ADMINS = [("Operator", "ops@example.org")]
    monkeypatch.setattr(Organism.objects, "count", explode)
    client.raise_request_exception = False
    response = client.get("/api/stats/", DATABASE_URL=DATABASE_URL, **SECRETS)
    assert response.status_code == 500
    assert "could not reach" not in response.content.decode()
    [email] = mail.outbox
    assert email.to == ["ops@example.org"]
    assert "could not reach postgres://refinery:********@db.internal" in email.body
    assert_masked(email.body)
    for content, _mimetype in email.alternatives:
        assert_masked(content)


def test_logged_errors_mask_secrets_named_by_pattern(tmp_path):
    """A logged server error, under REFINERY_DEBUG=1 (where Django adds a console
    handler of its own), shows no secret that the environment names."""
    code = (
        "import logging, os\n"
        "try:\n"
        "    raise RuntimeError('webhook ' + os.environ['MY_WEBHOOK'] + ' refused '"
        " + os.environ['REFINERY_FOO_TOKEN'])\n"
        "except RuntimeError:\n"
        "    logging.getLogger('django.request').exception("
        "'Internal Server Error: %s', os.environ['LOG_DATABASE_URL'])\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "REFINERY_DEBUG": "1",
        "MY_WEBHOOK": SECRETS["MY_WEBHOOK"],
        "REFINERY_FOO_TOKEN": SECRETS["REFINERY_FOO_TOKEN"],
        "DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite3",
        "LOG_DATABASE_URL": DATABASE_URL,
    }
    result = run_manage(["shell", "-v0", "-c", code], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Internal Server Error: postgres://refinery:********@db.internal" in result.stderr
    assert "RuntimeError: webhook ******** refused ********" in result.stderr
    for secret in SECRET_VALUES:
        assert secret not in result.stderr
