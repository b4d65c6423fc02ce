"""Keep secrets out of logs, errors and failure reasons.

Every text the refinery writes where people read it (log records, a job's
`failure_reason`, a command's error) passes through `redact`, which replaces
the values of the secrets it knows: the database password, AWS keys, the Nomad
token and Django's secret key.
"""

from __future__ import annotations

import logging
import os
import re
from functools import lru_cache
from urllib.parse import urlsplit

SECRET_ENVIRONMENT = (
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "NOMAD_TOKEN",
    "DJANGO_SECRET_KEY",
)
MASK = "********"
# user:password@ in any URL, whether or not we know the password.
URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):[^@/\s]+@", re.I)


@lru_cache(maxsize=1)
def _known_secrets() -> tuple[str, ...]:
    values = [os.environ.get(name, "") for name in SECRET_ENVIRONMENT]
    database_url = os.environ.get("DATABASE_URL", "")
    if database_url:
        values.append(urlsplit(database_url).password or "")
    try:
        from django.conf import settings

        for database in settings.DATABASES.values():
            values.append(database.get("PASSWORD", ""))
    except Exception:  # settings not configured: the environment is all we have
        pass
    # Short values would mask ordinary words: a real secret is never that short.
    return tuple(sorted({v for v in values if v and len(v) >= 6}, key=len, reverse=True))


def redact(text: str) -> str:
    """`text` with every known secret, and any URL's password, masked."""
    if not text:
        return text
    text = URL_CREDENTIALS.sub(rf"\g<scheme>\g<user>:{MASK}@", text)
    for secret in _known_secrets():
        text = text.replace(secret, MASK)
    return text


class RedactSecretsFilter(logging.Filter):
    """A logging filter that masks secrets in the formatted message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


# A setting holds a secret when its name says so (issue 9): masked wherever it is
# shown, and kept out of the Nomad job specifications (runner/nomad/task_env.py).
SECRET_NAME = re.compile(r"TOKEN|PASS|SECRET|KEY|WEBHOOK", re.IGNORECASE)
# NAME=value or NAME: value in free text (a traceback, a task's output).
_SECRET_ASSIGNMENT = re.compile(
    r"(?P<name>\b[A-Za-z0-9_.-]*(?:TOKEN|PASS|SECRET|KEY|WEBHOOK)[A-Za-z0-9_.-]*"
    r"['\"]?\s*[=:]\s*['\"]?)(?P<value>[^\s'\",;]+)",
    re.IGNORECASE,
)


def is_secret_setting(name: str, value: str = "") -> bool:
    """Whether the setting `name` holds a secret: its name holds TOKEN, PASS, SECRET,
    KEY or WEBHOOK, it is DATABASE_URL, or `value` has credentials in a URL."""
    return (
        bool(SECRET_NAME.search(name))
        or name == "DATABASE_URL"
        or bool(URL_CREDENTIALS.search(value))
    )


def redact_text(text: str, environ: dict[str, str] | None = None) -> str:
    """`redact(text)`, and also the values of every secret setting in `environ`
    (default: this process's environment) and whatever follows a secret-looking
    name in `NAME=value` or `NAME: value`: for text nobody vetted, such as the end
    of a task's output."""
    environ = os.environ if environ is None else environ
    values = sorted(
        {v for k, v in environ.items() if len(v) >= 6 and is_secret_setting(k, v)},
        key=len,
        reverse=True,
    )
    for value in values:
        text = text.replace(value, MASK)
    text = _SECRET_ASSIGNMENT.sub(_mask_assignment, text)
    return redact(text)


def _mask_assignment(match: re.Match) -> str:
    name = match.group("name")
    if name.rstrip("'\" \t=:").endswith(("Error", "Exception", "Warning")):
        return match.group(0)  # KeyError: 'X' names what is missing, it holds no secret
    return name + MASK
