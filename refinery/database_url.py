"""Turn a `DATABASE_URL` into a Django `DATABASES` entry.

Only the two back ends the refinery supports: `sqlite:///path` and
`postgres://user:password@host:port/name?option=value`.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

SQLITE_BUSY_TIMEOUT_S = 30


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
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = unquote(parts.path)
        if parts.netloc:
            raise ImproperlyConfigured(
                "DATABASE_URL: a SQLite URL has no host; write sqlite:///relative/path "
                "or sqlite:////absolute/path"
            )
        path = path[1:] if path.startswith("/") else path
        if not path:
            raise ImproperlyConfigured("DATABASE_URL: the SQLite URL names no file")
        return sqlite_database(Path(path).resolve())
    if parts.scheme in ("postgres", "postgresql", "pgsql"):
        name = unquote(parts.path.lstrip("/"))
        if not name:
            raise ImproperlyConfigured("DATABASE_URL: the PostgreSQL URL names no database")
        options = dict(parse_qsl(parts.query))
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": unquote(parts.hostname or ""),
            "PORT": str(parts.port or ""),
            "CONN_MAX_AGE": int(options.pop("conn_max_age", 0)),
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": {"connect_timeout": 10, **options},
        }
    raise ImproperlyConfigured(
        f"DATABASE_URL: unsupported scheme {parts.scheme!r}; use sqlite:/// or postgres://"
    )
