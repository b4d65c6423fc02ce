"""Keep secrets out of logs, errors, failure reasons and stored URLs.

Every text the refinery writes where people read it (log records, a job's
`failure_reason`, a command's error) passes through `redact`, which replaces
the values of the secrets it knows: the database password, AWS keys, the Nomad
token and Django's secret key.

A source's base URL (a setting) may carry `user:password@` for a private
mirror. Those credentials live in the setting only: every URL is stored
without them (`strip_credentials`), and the code that fetches puts them back
from the setting whose base URL the stored one lies under (`with_credentials`).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from functools import lru_cache
from urllib.parse import SplitResult, urlsplit, urlunsplit

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


def _host(parts: SplitResult) -> str:
    """The URL's host and port, as written, without credentials."""
    return parts.netloc.rpartition("@")[2]


def strip_credentials(url: str) -> str:
    """`url` without its `user:password@` (or `user@`), to be stored or shown."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=_host(parts)))


def with_credentials(url: str, base_urls: Iterable[str]) -> str:
    """`url` with the credentials of the base URL it lies under (same scheme,
    host and port, and a path under the base's path; the longest such base
    wins); `url` itself when none of the bases with credentials matches."""
    target = urlsplit(strip_credentials(url))
    best, best_length = None, -1
    for base in base_urls:
        parts = urlsplit(base)
        if "@" not in parts.netloc:
            continue
        if (parts.scheme.lower(), _host(parts).lower()) != (
            target.scheme.lower(),
            target.netloc.lower(),
        ):
            continue
        prefix = parts.path.rstrip("/")
        if target.path != prefix and not target.path.startswith(prefix + "/"):
            continue
        if len(prefix) > best_length:
            best, best_length = parts, len(prefix)
    if best is None:
        return url
    credentials = best.netloc.rpartition("@")[0]
    return urlunsplit(target._replace(netloc=f"{credentials}@{target.netloc}"))
