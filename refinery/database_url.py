"""Turn a `DATABASE_URL` into a Django `DATABASES` entry.

dj-database-url parses the URL; on top of it the refinery accepts only the two
back ends it supports (`sqlite:///path` and `postgres://user:password@host:port/name?option=value`)
and sets SQLite up for several worker processes.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

SQLITE_BUSY_TIMEOUT_S = 30
POSTGRES_SCHEMES = ("postgres", "postgresql", "pgsql")


def sqlite_database(path: str | Path) -> dict:
    """SQLite set up for several writer processes: WAL, a busy timeout and
    immediate transactions (a writer takes the lock when its transaction begins,
    so two workers never deadlock upgrading a read lock)."""
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        "OPTIONS": {
            "timeout": SQLITE_BUSY_TIMEOUT_S,
            "transaction_mode": "IMMEDIATE",
            "init_command": (
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
            ),
        },
        "TEST": {"NAME": str(Path(path).with_name("test_" + Path(path).name))},
    }


def parse_database_url(url: str) -> dict:
    """A `DATABASES["default"]` entry for `url`.

    Errors never repeat the URL itself: it may hold a password.
    """
    try:
        scheme, host = urlsplit(url).scheme, urlsplit(url).netloc
        if scheme not in ("sqlite", *POSTGRES_SCHEMES):
            raise ImproperlyConfigured(
                f"DATABASE_URL: unsupported scheme {scheme!r}; use sqlite:/// or postgres://"
            )
        if scheme == "sqlite" and host:
            raise ImproperlyConfigured(
                "DATABASE_URL: a SQLite URL has no host; write sqlite:///relative/path "
                "or sqlite:////absolute/path"
            )
        config = dict(dj_database_url.parse(url, conn_health_checks=True))
    except ValueError as error:  # the library's messages never quote the URL
        raise ImproperlyConfigured(f"DATABASE_URL: {error}") from None
    if scheme == "sqlite":
        if config["NAME"] in ("", ":memory:"):
            raise ImproperlyConfigured("DATABASE_URL: the SQLite URL names no file")
        return sqlite_database(Path(config["NAME"]).resolve())
    if not config["NAME"]:
        raise ImproperlyConfigured("DATABASE_URL: the PostgreSQL URL names no database")
    options = config.pop("OPTIONS", {})
    # Django's back end, with a health check that needs no round trip (its docstring).
    config["ENGINE"] = "refinery.postgresql"
    config["CONN_MAX_AGE"] = int(options.pop("conn_max_age", 0))
    config["OPTIONS"] = {"connect_timeout": 10, **options}
    config["PORT"] = str(config["PORT"])
    return config
