"""Settings from the environment; production is safe; secrets stay secret."""

import logging
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from common.secrets import RedactSecretsFilter, redact
from refinery.database_url import parse_database_url
from tests.conftest import MANAGE, PROJECT

PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "refinery.settings_production",
    "DJANGO_SECRET_KEY": "k" * 20 + "-production-secret-0123456789-abcdefghijklmnop",
    "REFINERY_ALLOWED_HOSTS": "refinery.example.org",
    "PATH": "/usr/bin:/bin",
}


def run_manage(args, env, tmp_path):
    return subprocess.run(
        [sys.executable, str(MANAGE), *args],
        env={**env, "REFINERY_HOME": str(tmp_path), "PYTHONPATH": str(PROJECT)},
        capture_output=True, text=True, cwd=PROJECT, timeout=60,
    )  # fmt: skip


def test_check_deploy_is_clean_in_production(tmp_path):
    result = run_manage(["check", "--deploy", "--fail-level", "WARNING"], PRODUCTION, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_debug_is_off_unless_asked_for(tmp_path):
    show = ["shell", "-v0", "-c", "from django.conf import settings; print(settings.DEBUG)"]
    default = run_manage(show, {"PATH": "/usr/bin:/bin"}, tmp_path)
    assert default.returncode == 0, default.stderr
    assert default.stdout.strip() == "False"
    asked = run_manage(show, {"PATH": "/usr/bin:/bin", "REFINERY_DEBUG": "1"}, tmp_path)
    assert asked.stdout.strip() == "True"


def test_production_requires_a_secret_key(tmp_path):
    env = {k: v for k, v in PRODUCTION.items() if k != "DJANGO_SECRET_KEY"}
    result = run_manage(["check"], env, tmp_path)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set in production" in result.stderr


def test_a_bad_database_url_never_repeats_the_password():
    with pytest.raises(ImproperlyConfigured) as error:
        parse_database_url("mysql://user:hunter2-secret@db/x")
    assert "hunter2" not in str(error.value)


def test_database_urls_parse():
    pg = parse_database_url("postgres://u:p%40ss@db.internal:6432/refinery?sslmode=require")
    assert (pg["HOST"], pg["PORT"], pg["NAME"], pg["PASSWORD"]) == (
        "db.internal", "6432", "refinery", "p@ss",
    )  # fmt: skip
    assert pg["OPTIONS"]["sslmode"] == "require"
    sqlite = parse_database_url("sqlite:////tmp/x/refinery.sqlite3")
    assert sqlite["NAME"] == "/tmp/x/refinery.sqlite3"
    assert sqlite["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in sqlite["OPTIONS"]["init_command"]


def test_secrets_are_masked_in_log_records(monkeypatch):
    from common import secrets

    monkeypatch.setenv("NOMAD_TOKEN", "b1946ac9-nomad-token-secret")
    secrets._known_secrets.cache_clear()
    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "nomad refused %s at %s",
        ("b1946ac9-nomad-token-secret", "postgres://refinery:pw-98765@db/r"), None,
    )  # fmt: skip
    RedactSecretsFilter().filter(record)
    message = record.getMessage()
    assert "nomad-token-secret" not in message and "pw-98765" not in message
    assert "postgres://refinery:********@db/r" in message
    assert redact("plain text") == "plain text"
    secrets._known_secrets.cache_clear()


def test_the_embedded_defaults_use_wal_sqlite_under_refinery_home(tmp_path):
    result = run_manage(
        ["shell", "-v0", "-c", "from django.db import connection; c = connection.cursor(); "
         "c.execute('PRAGMA journal_mode'); print(c.fetchone()[0]); "
         "print(connection.settings_dict['NAME'])"],
        {"PATH": "/usr/bin:/bin"}, tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["wal", str(tmp_path / "refinery.sqlite3")]


def test_the_api_page_cap_must_be_a_positive_number(tmp_path):
    result = run_manage(["check"], {"PATH": "/usr/bin:/bin", "REFINERY_API_MAX_PAGE_SIZE": "0"},
                        tmp_path)  # fmt: skip
    assert result.returncode != 0
    assert "REFINERY_API_MAX_PAGE_SIZE must be at least 1" in result.stderr
