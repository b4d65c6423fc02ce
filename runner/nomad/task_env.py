"""The environment of the refinery's Nomad tasks: which settings are copied from
where the specifications are generated, what the cluster decides, what looks
wrong, and the same with its secrets masked for review."""

from __future__ import annotations

import os
import re

from django.conf import settings

from common.secrets import mask_named

# Environment copied into every task when set where the specs are generated,
# besides every REFINERY_* and ENSEMBL_* variable (settings) and the names in
# REFINERY_NOMAD_TASK_ENV.
TASK_ENV_NAMES = (
    "DATABASE_URL",
    "DJANGO_SECRET_KEY",
    "REFINERY_TEMP_STORAGE",
    "REFINERY_PERMANENT_STORAGE",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "NOMAD_ADDR",
    "NOMAD_TOKEN",
    "NOMAD_NAMESPACE",
    "NOMAD_REGION",
)
TASK_ENV_PREFIXES = ("REFINERY_", "ENSEMBL_")
# Where the task runs decides these, not the machine that generates the specs.
TASK_ENV_LOCAL_ONLY = frozenset(
    {"REFINERY_HOME", "REFINERY_WORK_DIR", "REFINERY_IMAGE", "REFINERY_ENV_FILE"}
)
TASK_ENV_LOCAL_PREFIXES = ("REFINERY_TEST_",)


def _copied(name: str) -> bool:
    if name in TASK_ENV_LOCAL_ONLY or name.startswith(TASK_ENV_LOCAL_PREFIXES):
        return False
    return (
        name in TASK_ENV_NAMES
        or name.startswith(TASK_ENV_PREFIXES)
        or name in settings.REFINERY_NOMAD_TASK_ENV
    )


def task_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The tasks' environment: the settings of this environment that they need,
    and what the cluster decides (production settings, the Nomad dispatcher, the
    scratch folder)."""
    environ = os.environ if environ is None else environ
    env = {name: value for name, value in sorted(environ.items()) if value and _copied(name)}
    env.update(
        DJANGO_SETTINGS_MODULE="refinery.settings_production",
        REFINERY_HOME=settings.REFINERY_NOMAD_TASK_HOME,
        REFINERY_DISPATCHER="nomad",
    )
    return env


def env_warnings(env: dict[str, str]) -> list[str]:
    """What is missing or doubtful in the tasks' environment."""
    warnings = []
    for name in ("DATABASE_URL", "DJANGO_SECRET_KEY", "NOMAD_ADDR"):
        if name not in env:
            warnings.append(f"{name} is not set: the tasks will not have it")
    if env.get("DATABASE_URL", "").startswith("sqlite"):
        warnings.append("DATABASE_URL is SQLite: every task would have a database of its own")
    for name in ("REFINERY_TEMP_STORAGE", "REFINERY_PERMANENT_STORAGE"):
        if not env.get(name, "").startswith("s3://"):
            warnings.append(
                f"{name} is not an s3:// URL: tasks on different machines share no folder"
            )
    address = env.get("NOMAD_ADDR", "")
    if re.match(r"^https?://(127\.|localhost|\[::1\])", address):
        warnings.append(f"NOMAD_ADDR is {address}: inside a container that is the container itself")
    return warnings


def masked_env(env: dict[str, str]) -> dict[str, str]:
    """`env` with secrets masked, for review: by name, and any URL's password."""
    return {name: mask_named(name, value) for name, value in env.items()}
