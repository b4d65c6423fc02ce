"""The PostgreSQL a benchmark runs on: the server `--database-url` (or
DATABASE_URL) names, or a private throwaway one (demo.services.Postgres), and
databases of the bench's own on it, dropped at the end."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def postgres_server(database_url: str | None, bench: str) -> tuple[str, Callable[[], None]]:
    """The server's URL, and a function that stops it if the bench started it.
    Exits naming `bench` when the URL is not PostgreSQL's."""
    if database_url:
        if not database_url.startswith(("postgres://", "postgresql://")):
            sys.exit(f"{bench} needs PostgreSQL: give --database-url postgres://…")
        return database_url, lambda: None
    from demo.services import Postgres

    print("starting a private PostgreSQL …", flush=True)
    server = Postgres().start()
    return server.url, server.stop


def create_database(server_url: str) -> tuple[str, Callable[[], None]]:
    """A new database on the server `server_url` names; returns its URL and a
    function that drops it."""
    import psycopg2

    name = f"refinery_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(with_database(server_url, "postgres"))
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")

    def drop() -> None:
        from django.db import connections

        connections.close_all()
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {name}")
        admin.close()

    return with_database(server_url, name), drop
