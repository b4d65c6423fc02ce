"""Fixtures shared by the whole suite.

The database is whatever `DATABASE_URL` names (PostgreSQL under `make test`, or
SQLite); S3 is the moto server `AWS_ENDPOINT_URL` names, or one started here.
Tests that run refinery processes (`manage.py worker`, `survey`, …) use
`transactional_db` so those processes see committed rows, and `manage` /
`start_manage` to run them against the test database and storage.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

from demo.services import S3_TEST_ENVIRONMENT, MotoServer

pytest_plugins = [
    "tests.ensembl_fixtures",
    "tests.ena_fixtures",
    "tests.history_fixtures",
    "tests.run_fixtures",
]

PROJECT = Path(__file__).resolve().parent.parent
MANAGE = PROJECT / "manage.py"


def pytest_addoption(parser):
    parser.addoption(
        "--database-tests",
        action="store_true",
        help="run only the tests whose result may depend on the database (`make test`'s "
        "second pass): not those that use none, nor those marked same_on_every_database",
    )


def uses_the_database(item) -> bool:
    """Whether a test's result may depend on the database: it touches it (a
    `django_db` mark, or a fixture that sets up the test database: db,
    transactional_db, client, admin_user, live_server… all depend on
    django_db_setup) and is not marked `same_on_every_database`."""
    if item.get_closest_marker("same_on_every_database"):
        return False
    return bool(item.get_closest_marker("django_db")) or "django_db_setup" in getattr(
        item, "fixturenames", ()
    )


def pytest_collection_modifyitems(config, items):
    """`postgres_only` tests are skipped, with the reason, when the database is not
    PostgreSQL (`pytest tests/<folder>` on SQLite); `make test` deselects them on
    its SQLite run and runs them on PostgreSQL. With --database-tests, the tests
    that use no database are deselected: `make test` has run them on PostgreSQL."""
    if config.getoption("--database-tests"):
        kept = [item for item in items if uses_the_database(item)]
        config.hook.pytest_deselected(items=[i for i in items if not uses_the_database(i)])
        items[:] = kept
    if connection.vendor == "postgresql":
        return
    skip = pytest.mark.skip(reason=f"needs PostgreSQL; the database is {connection.vendor}")
    for item in items:
        if item.get_closest_marker("postgres_only"):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def short_retry_waits(settings):
    """Sources' transient failures are tried again after 50 ms, not 1 s: the tests
    check that retries happen and what they end in, not how long they wait."""
    settings.REFINERY_HTTP_RETRY_WAIT_S = 0.05


@pytest.fixture(autouse=True)
def fresh_dispatch_state():
    """Each test's sends read pauses and caps from its own database."""
    from runner.dispatch.outbox import forget_dispatch_state

    forget_dispatch_state()
    yield
    forget_dispatch_state()


def current_database_url() -> str:
    """A DATABASE_URL for the database the tests use now (the test database)."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return "sqlite:///" + str(Path(s["NAME"]).resolve())
    auth = f"{quote(s['USER'])}:{quote(s['PASSWORD'])}@" if s["USER"] else ""
    return f"postgres://{auth}{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.fixture
def refinery_dirs(tmp_path, settings):
    """Fresh storage, work and log folders for one test."""
    settings.REFINERY_TEMP_STORAGE = str(tmp_path / "storage" / "temp")
    settings.REFINERY_PERMANENT_STORAGE = str(tmp_path / "storage" / "permanent")
    settings.REFINERY_WORK_DIR = tmp_path / "work"
    settings.REFINERY_LOG_SPOOL = tmp_path / "logs"
    return tmp_path


def refinery_environment(refinery_dirs: Path) -> dict:
    """The environment for a refinery process that shares this test's database
    and storage, as the settings say now."""
    from django.conf import settings

    return {
        **os.environ,
        "DATABASE_URL": current_database_url(),
        "REFINERY_HOME": str(refinery_dirs),
        "REFINERY_TEMP_STORAGE": settings.REFINERY_TEMP_STORAGE,
        "REFINERY_PERMANENT_STORAGE": settings.REFINERY_PERMANENT_STORAGE,
        "REFINERY_WORK_DIR": str(settings.REFINERY_WORK_DIR),
        "REFINERY_WORKER_POLL_S": "0.05",
        "REFINERY_HTTP_RETRY_WAIT_S": str(settings.REFINERY_HTTP_RETRY_WAIT_S),
        "PYTHONPATH": str(PROJECT),
        "DJANGO_SETTINGS_MODULE": "refinery.settings",
    }


@pytest.fixture
def subprocess_env(refinery_dirs):
    """Builds the environment of a refinery process at the moment it starts, so
    fixtures and tests may change storage settings first."""
    return lambda: refinery_environment(refinery_dirs)


def _manage_argv(args) -> list[str]:
    return [sys.executable, str(MANAGE), *map(str, args)]


@pytest.fixture
def manage(subprocess_env):
    """Run `manage.py <args>` to completion in a new process."""

    def run(*args, env: dict | None = None, timeout: float = 300, check: bool = True):
        result = subprocess.run(
            _manage_argv(args),
            env={**subprocess_env(), **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=PROJECT,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"manage.py {' '.join(map(str, args))} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    return run


@pytest.fixture
def start_manage(subprocess_env):
    """Start `manage.py <args>` in the background; stopped at the end of the test."""
    started: list[subprocess.Popen] = []

    def start(*args, env: dict | None = None, **popen):
        process = subprocess.Popen(
            _manage_argv(args),
            env={**subprocess_env(), **(env or {})},
            cwd=PROJECT,
            stdout=popen.pop("stdout", subprocess.PIPE),
            stderr=popen.pop("stderr", subprocess.STDOUT),
            text=True,
            **popen,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)


@pytest.fixture(scope="session")
def s3_endpoint():
    """The S3 server's URL: the suite's moto server, or one started here."""
    if os.environ.get("AWS_ENDPOINT_URL"):
        yield os.environ["AWS_ENDPOINT_URL"]
        return
    server = MotoServer().start()
    os.environ.update(S3_TEST_ENVIRONMENT, AWS_ENDPOINT_URL=server.url)
    from common.storage import s3_client

    s3_client.cache_clear()
    yield server.url
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint) -> str:
    """A new, empty bucket on the S3 server."""
    from common.storage import s3_client

    name = f"refinery-test-{uuid.uuid4().hex[:12]}"
    s3_client().create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_storage(settings, refinery_dirs, s3_bucket):
    """Temporary and permanent storage in S3 for one test."""
    settings.REFINERY_TEMP_STORAGE = f"s3://{s3_bucket}/temp"
    settings.REFINERY_PERMANENT_STORAGE = f"s3://{s3_bucket}/permanent"
    return s3_bucket
