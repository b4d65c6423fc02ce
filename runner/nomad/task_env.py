"""The settings of the refinery's Nomad tasks: which are copied from where the
specifications are generated, which of them are secrets, what the cluster decides,
and what would keep a task from starting.

Settings are copied from the environment `manage.py nomad register` runs in: every
`REFINERY_*` and `ENSEMBL_*` variable, the names in TASK_ENV_NAMES and those in
REFINERY_NOMAD_TASK_ENV. Of these,

- the secrets (a name holding TOKEN, PASS, SECRET, KEY or WEBHOOK, `DATABASE_URL`,
  any value with credentials in a URL) go to the job's Nomad Variable
  `nomad/jobs/<job>`, which a template renders into the task's environment: the
  job specification names them and holds none of their values;
- the others go into the task's `Env`;
- `NOMAD_TOKEN` goes nowhere: a task calls Nomad with its own workload identity.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from django.conf import settings

from common.secrets import MASK, is_secret_setting, redact

TASK_ENV_NAMES = (
    "DATABASE_URL",
    "DJANGO_SECRET_KEY",
    "REFINERY_TEMP_STORAGE",
    "REFINERY_PERMANENT_STORAGE",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "NOMAD_ADDR",
    "NOMAD_NAMESPACE",
    "NOMAD_REGION",
)
TASK_ENV_PREFIXES = ("REFINERY_", "ENSEMBL_")
# Where the task runs decides these, not the machine that generates the specs.
TASK_ENV_LOCAL_ONLY = frozenset(
    {"REFINERY_HOME", "REFINERY_WORK_DIR", "REFINERY_IMAGE", "REFINERY_ENV_FILE"}
)
TASK_ENV_LOCAL_PREFIXES = ("REFINERY_TEST_",)
# Never copied: the operator's Nomad token stays with `register`.
NEVER_COPIED = frozenset({"NOMAD_TOKEN"})
# Secrets only the Foreman uses (it alone tells operators).
FOREMAN_ONLY_SECRETS = frozenset({"REFINERY_NOTIFY_WEBHOOK", "REFINERY_WEBHOOK_SECRET"})
PRODUCTION_SETTINGS = "refinery.settings_production"


def _copied(name: str) -> bool:
    if name in NEVER_COPIED or name in TASK_ENV_LOCAL_ONLY:
        return False
    if name.startswith(TASK_ENV_LOCAL_PREFIXES):
        return False
    return (
        name in TASK_ENV_NAMES
        or name.startswith(TASK_ENV_PREFIXES)
        or name in settings.REFINERY_NOMAD_TASK_ENV
    )


@dataclass(frozen=True)
class TaskSettings:
    """What every task gets: `env` in its specification, `secrets` through its
    job's Nomad Variable."""

    env: dict[str, str]
    secrets: dict[str, str]

    def secrets_for(self, foreman: bool) -> dict[str, str]:
        """The secrets one job's tasks get: the Foreman's get all of them."""
        if foreman:
            return dict(self.secrets)
        return {k: v for k, v in self.secrets.items() if k not in FOREMAN_ONLY_SECRETS}

    def all(self) -> dict[str, str]:
        return {**self.env, **self.secrets}


def task_settings(environ: Mapping[str, str] | None = None) -> TaskSettings:
    """The tasks' settings, from `environ` (default: this process's environment),
    and what the cluster decides (production settings, the Nomad dispatcher, the
    scratch folder)."""
    environ = os.environ if environ is None else environ
    env, secrets = {}, {}
    for name, value in sorted(environ.items()):
        if value and _copied(name):
            (secrets if is_secret_setting(name, value) else env)[name] = value
    env.update(
        DJANGO_SETTINGS_MODULE=PRODUCTION_SETTINGS,
        REFINERY_HOME=settings.REFINERY_NOMAD_TASK_HOME,
        REFINERY_DISPATCHER="nomad",
    )
    return TaskSettings(env, secrets)


def env_warnings(values: Mapping[str, str]) -> list[str]:
    """What looks doubtful, though the tasks can start (see runner.nomad.checks for
    what keeps them from starting)."""
    warnings = []
    address = values.get("NOMAD_ADDR", "")
    if not address:
        warnings.append(
            "NOMAD_ADDR is not set: the tasks would call Nomad at 127.0.0.1:4646, which "
            "inside a container is the container itself"
        )
    elif re.match(r"^https?://(127\.|localhost|\[::1\])", address):
        warnings.append(f"NOMAD_ADDR is {address}: inside a container that is the container itself")
    return warnings


def masked_env(env: Mapping[str, str]) -> dict[str, str]:
    """`env` with every secret masked, for review: by name (common.secrets.SECRET_NAME,
    DATABASE_URL) and any credentials in a URL."""
    return {name: MASK if is_secret_setting(name) else redact(value) for name, value in env.items()}
