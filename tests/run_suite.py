"""`make test`: the whole suite on PostgreSQL, then the database tests on SQLite.

Starts a throwaway PostgreSQL (unless REFINERY_TEST_DATABASE_URL names one) and
a moto S3 server on free loopback ports, and stops them at the end.

The SQLite pass runs only the tests that use a database (--database-tests): the
others gave their answer on PostgreSQL and would give the same one again.

Each pass runs on REFINERY_TEST_WORKERS pytest-xdist workers (3 by default; 1 runs
in this process's pytest alone). Most of the suite waits on processes, servers
and leases rather than computing, so three workers keep two cores busy. Each
worker has its own test database (pytest-django suffixes its name: test_refinery_gw0,
test_refinery.sqlite3_gw0) and its own REFINERY_HOME, so the default storage and
work folders of two workers' jobs with the same id never meet.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from demo.services import S3_TEST_ENVIRONMENT, MotoServer, Postgres


def pytest(args: list[str], env: dict, label: str) -> int:
    print(f"\n==== {label} ====", flush=True)
    started = time.monotonic()
    code = subprocess.call([sys.executable, "-m", "pytest", *args], env=env)
    print(f"==== {label}: {'passed' if code == 0 else 'FAILED'} in "
          f"{time.monotonic() - started:.0f} s ====", flush=True)  # fmt: skip
    return code


def workers() -> int:
    value = os.environ.get("REFINERY_TEST_WORKERS", "3")
    if not value.isdigit() or int(value) < 1:
        sys.exit(f"REFINERY_TEST_WORKERS must be a whole number, 1 or more, not {value!r}")
    return int(value)


def distributed(count: int, home: Path) -> list[str]:
    """pytest-xdist's arguments for `count` workers, each with its own REFINERY_HOME
    under `home` (set before Django reads its settings)."""
    if count == 1:
        return []
    specs = []
    for n in range(count):
        folder = home / f"worker-{n}"
        folder.mkdir(parents=True, exist_ok=True)
        specs += ["--tx", f"popen//env:REFINERY_HOME={folder}"]
    return ["--dist", "load", *specs]


def main(extra: list[str]) -> int:
    postgres = None
    moto = MotoServer().start()
    try:
        database_url = os.environ.get("REFINERY_TEST_DATABASE_URL")
        if not database_url:
            postgres = Postgres().start()
            database_url = postgres.url
        base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
        base.update(S3_TEST_ENVIRONMENT, AWS_ENDPOINT_URL=moto.url)
        base.pop("AWS_PROFILE", None)
        home = Path(base.get("REFINERY_HOME") or tempfile.mkdtemp(prefix="refinery-test-"))
        count = workers()
        on_postgres = pytest(
            ["-q", *distributed(count, home / "postgresql"), *extra],
            {**base, "DATABASE_URL": database_url},
            "the whole suite on PostgreSQL",
        )
        on_sqlite = pytest(
            ["-q", "-m", "not postgres_only", "--database-tests",
             *distributed(count, home / "sqlite"), *extra],
            base,
            "the database tests on SQLite",
        )  # fmt: skip
        return on_postgres or on_sqlite
    finally:
        moto.stop()
        if postgres:
            postgres.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
