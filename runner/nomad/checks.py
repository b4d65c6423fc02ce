"""What would keep the refinery's Nomad tasks from starting, or would show a secret
in their specifications, found before they are registered.

The tasks run `refinery.settings_production` on machines of their own, so a
setting that works where `register` runs can still kill them: no
`DJANGO_SECRET_KEY`, a SQLite database or a storage folder no other machine sees,
a value the settings refuse. `startup_problems` names each such problem and what to
set. `specification_leaks` finds a secret that would still be written into a
specification (a scheduled survey's arguments are a command line, in clear).
`manage.py nomad register` registers nothing while there is either.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from common.secrets import URL_CREDENTIALS, redact, redact_text
from refinery.database_url import parse_database_url
from runner.nomad.specs import Specs
from runner.nomad.task_env import PRODUCTION_SETTINGS

PROJECT = Path(__file__).resolve().parents[2]
SETTINGS_LOAD_TIMEOUT_S = 60
S3 = "s3://"
# Loads the settings the way a task's `manage.py` does, and nothing else.
LOAD_SETTINGS = "from django.conf import settings; settings.INSTALLED_APPS"


def startup_problems(values: Mapping[str, str]) -> list[str]:
    """Why tasks given `values` (their environment and secrets) could not start;
    empty when nothing is known to stop them."""
    problems = []
    if not values.get("DJANGO_SECRET_KEY"):
        problems.append(
            "DJANGO_SECRET_KEY is not set: the tasks run the production settings "
            f"({PRODUCTION_SETTINGS}), which refuse to start without it. Set it where "
            "`register` runs (python -c 'import secrets; print(secrets.token_urlsafe(50))')"
        )
    problems.extend(_database_problems(values.get("DATABASE_URL", "")))
    for name in ("REFINERY_TEMP_STORAGE", "REFINERY_PERMANENT_STORAGE"):
        value = values.get(name, "")
        if not value:
            problems.append(
                f"{name} is not set: each task would keep files in a folder under "
                f"{settings.REFINERY_NOMAD_TASK_HOME} on its own machine, which tasks on "
                "other machines cannot read. Set it to an s3://bucket/prefix URL"
            )
        elif not value.startswith(S3):
            problems.append(
                f"{name} is the local folder {redact(value)}: tasks on other machines "
                "cannot read it. Set it to an s3://bucket/prefix URL"
            )
    if not problems:
        problems.extend(settings_load_problems(values))
    return problems


def specification_leaks(specs: Specs) -> list[str]:
    """Where a job's specification would show a secret's value, or credentials in a
    URL (the secrets themselves go to the jobs' variables)."""
    secrets = {v: k for k, v in specs.task_settings.secrets.items() if len(v) >= 6}
    found = []
    for job in specs.jobs:
        for where, text in _strings(job):
            name = next((n for value, n in secrets.items() if value in text), None)
            if name is not None:
                found.append(
                    f"{job['ID']} would show the value of {name} in its specification "
                    f"({where}): pass it as a setting, not there"
                )
            elif URL_CREDENTIALS.search(text):
                found.append(
                    f"{job['ID']} would show credentials in a URL in its specification "
                    f"({where}): keep credentials in settings"
                )
    return found


def _strings(value: object, where: str = "") -> list[tuple[str, str]]:
    """Every string in a job, with its dotted path."""
    if isinstance(value, str):
        return [(where, value)]
    if isinstance(value, dict):
        items = value.items()
        return [s for k, v in items for s in _strings(v, f"{where}.{k}" if where else k)]
    if isinstance(value, list):
        return [s for i, v in enumerate(value) for s in _strings(v, f"{where}[{i}]")]
    return []


def _database_problems(url: str) -> list[str]:
    if not url:
        return [
            "DATABASE_URL is not set: each task would make a SQLite database of its own. "
            "Set it to the cluster's PostgreSQL (postgres://user:password@host:5432/name)"
        ]
    try:
        database = parse_database_url(url)
    except ImproperlyConfigured as error:
        return [f"{error}. Set DATABASE_URL to postgres://user:password@host:5432/name"]
    if database["ENGINE"].endswith("sqlite3"):
        return [
            "DATABASE_URL is a SQLite file: in cluster mode every task would have a "
            "database of its own. Set it to the cluster's PostgreSQL "
            "(postgres://user:password@host:5432/name)"
        ]
    return []


def settings_load_problems(values: Mapping[str, str]) -> list[str]:
    """Whether `refinery.settings_production` loads with `values`, tried in a new
    Python process as a task would (only the settings: no database, no network)."""
    with tempfile.TemporaryDirectory(prefix="refinery-task-check-") as home:
        environ = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(PROJECT),
            **values,
            "DJANGO_SETTINGS_MODULE": PRODUCTION_SETTINGS,
            "REFINERY_HOME": home,
        }
        try:
            result = subprocess.run(
                [sys.executable, "-c", LOAD_SETTINGS],
                env=environ,
                cwd=PROJECT,
                capture_output=True,
                text=True,
                timeout=SETTINGS_LOAD_TIMEOUT_S,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            return [f"could not try the tasks' settings ({type(error).__name__}: {error})"]
    if result.returncode == 0:
        return []
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else f"exit code {result.returncode}"
    if last.startswith("django.core.exceptions."):
        last = last[len("django.core.exceptions.") :]
    return [f"the tasks' settings do not load: {redact_text(last, dict(values))}"]
