"""`make test`: the whole suite on PostgreSQL, then the database tests on SQLite.

Starts a throwaway PostgreSQL (unless REFINERY_TEST_DATABASE_URL names one) and
a moto S3 server on free loopback ports, and stops them at the end.

The SQLite pass runs only the tests that use a database (--database-tests): the
others gave their answer on PostgreSQL and would give the same one again.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from demo.services import S3_TEST_ENVIRONMENT, MotoServer, Postgres


def pytest(args: list[str], env: dict, label: str) -> int:
    print(f"\n==== {label} ====", flush=True)
    started = time.monotonic()
    code = subprocess.call([sys.executable, "-m", "pytest", *args], env=env)
    print(f"==== {label}: {'passed' if code == 0 else 'FAILED'} in "
          f"{time.monotonic() - started:.0f} s ====", flush=True)  # fmt: skip
    return code


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
        on_postgres = pytest(
            ["-q", *extra], {**base, "DATABASE_URL": database_url}, "the whole suite on PostgreSQL"
        )
        on_sqlite = pytest(
            ["-q", "-m", "not postgres_only", "--database-tests", *extra],
            base,
            "the database tests on SQLite",
        )
        return on_postgres or on_sqlite
    finally:
        moto.stop()
        if postgres:
            postgres.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
