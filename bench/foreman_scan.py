"""A Foreman pass does not read finished jobs: one pass over 1,000 jobs needing
attention among 1,000,000 finished ones, against the same pass over the 1,000
alone.

    .venv/bin/python bench/foreman_scan.py [--finished 1000000] [--attention 1000]
                                           [--repeats 5] [--database-url URL]

PostgreSQL only. The bench creates two databases of its own on the server that
`--database-url` or DATABASE_URL names (and drops them at the end), or starts a
private throwaway server (demo.services.Postgres) when neither is set.

1. It migrates the empty database and inserts the attention set: per kind,
   failed attempts to retry, failed attempts to give up on (no_retry, with a
   notification to record), running jobs whose heartbeat is stale (hung),
   running jobs past their runtime limit, queued jobs to ask about, and
   created jobs to dispatch (40 % processors, 40 % downloaders, 20 % surveys).
   It does the same in a second database, and COPYs the finished jobs in there
   too (succeeded, failed and retried, failed and given up; over a year).
2. It times `Foreman.run_pass()` in each database, alternating, `--repeats`
   times after one warm-up pass each; every pass runs in a transaction that is
   rolled back, so every pass sees the same rows.

It prints the median of each, their ratio (goal: at most 2), and checks that no
query of a pass scans a job table sequentially (EXPLAIN of every SELECT).
"""

from __future__ import annotations

import argparse
import io
import os
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from bench.postgres import create_database, postgres_server  # noqa: E402 (after the path is set)

KINDS = {  # kind: (table, its own column, the value, share of the jobs)
    "processor": ("common_processorjob", "pipeline", "smoke_test", 0.4),
    "downloader": ("common_downloaderjob", "downloader_task", "files", 0.4),
    "survey": ("common_surveyjob", "source", "local_files", 0.2),
}
COMMON_COLUMNS = (
    "state", "created_at", "dispatched_at", "start_time", "end_time", "heartbeat_at",
    "worker_id", "worker_version", "failure_reason", "no_retry", "interrupted", "num_retries",
    "retried", "ram_mb", "exit_code", "given_up_at", "dispatch_id", "log_location",
)  # fmt: skip


def row(kind: str, when: datetime, **fields) -> dict:
    """A job row's columns, as a finished succeeded job unless told otherwise."""
    base = {
        "state": "succeeded",
        "created_at": when,
        "dispatched_at": when,
        "start_time": when + timedelta(seconds=5),
        "end_time": when + timedelta(minutes=3),
        "heartbeat_at": when + timedelta(minutes=3),
        "worker_id": "bench:1",
        "worker_version": "bench",
        "failure_reason": "",
        "no_retry": False,
        "interrupted": False,
        "num_retries": 0,
        "retried": False,
        "ram_mb": 1024,
        "exit_code": None,
        "given_up_at": None,
        "dispatch_id": "local",
        "log_location": "",
    }
    base.update(fields)
    return base


def copy_rows(cursor, kind: str, rows) -> int:
    """COPY rows (dicts from `row`) into the kind's table, in chunks."""
    table, column, value, _ = KINDS[kind]
    columns = (*COMMON_COLUMNS, column) + (("parameters",) if kind == "survey" else ())
    extra = (value, "{}") if kind == "survey" else (value,)
    total = 0
    while True:
        buffer = io.StringIO()
        count = 0
        for job in rows:
            cells = [job[c] for c in COMMON_COLUMNS] + list(extra)
            buffer.write("\t".join(_cell(c) for c in cells) + "\n")
            count += 1
            if count == 100_000:
                break
        if not count:
            return total
        buffer.seek(0)
        cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buffer)
        total += count


def _cell(value) -> str:
    if value is None:
        return r"\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value).replace("\\", "\\\\").replace("\t", " ").replace("\n", " ")


def attention_rows(kind: str, n: int, now: datetime):
    """`n` jobs of `kind` that a pass must act on or look at."""
    hour = timedelta(hours=1)
    makers = [
        lambda i: row(kind, now - hour, state="failed", failure_reason=f"boom {i}"),
        lambda i: row(kind, now - hour, state="failed", failure_reason="bad input", no_retry=True),
        lambda i: row(kind, now - hour, state="running", end_time=None,
                      heartbeat_at=now - hour),  # hung
        lambda i: row(kind, now - 3 * 24 * hour, state="running", end_time=None,
                      heartbeat_at=now),  # past its runtime limit
        lambda i: row(kind, now - hour, state="queued", start_time=None, end_time=None,
                      heartbeat_at=None),
        lambda i: row(kind, now - hour, state="created", dispatched_at=None, start_time=None,
                      end_time=None, heartbeat_at=None, dispatch_id=""),
    ]  # fmt: skip
    for i in range(n):
        yield makers[i % len(makers)](i)


def finished_rows(kind: str, n: int, now: datetime):
    """`n` finished jobs over the past year: mostly succeeded, some failed and
    retried, some failed and given up on."""
    for i in range(n):
        when = now - timedelta(days=365) + timedelta(seconds=i * 31_536_000 // max(n, 1))
        if i % 50 == 0:
            yield row(kind, when, state="failed", failure_reason="boom", retried=True)
        elif i % 101 == 0:
            yield row(kind, when, state="failed", failure_reason="bad input", no_retry=True,
                      given_up_at=when + timedelta(minutes=4))  # fmt: skip
        else:
            yield row(kind, when)


def split(total: int) -> dict[str, int]:
    shares = {kind: int(total * spec[3]) for kind, spec in KINDS.items()}
    shares["processor"] += total - sum(shares.values())
    return shares


def use_database(name: str) -> None:
    """Point Django's default connection at another database on the same server."""
    from django.db import connection

    connection.close()
    connection.settings_dict["NAME"] = name


def time_pass(explain: bool = False) -> tuple[float, Counter, list[str]]:
    """One pass, rolled back afterwards so the next sees the same rows: its time,
    what it did, and (with `explain`) its SELECTs that scan a job table
    sequentially."""
    from django.db import connection, transaction

    from foreman.passes import Foreman

    queries: list[tuple[str, tuple]] = []

    def record(execute, sql, params, many, context):
        queries.append((sql, params))
        return execute(sql, params, many, context)

    with transaction.atomic():
        foreman = Foreman(outbox_grace_s=0)
        with connection.execute_wrapper(record):
            started = time.perf_counter()
            report = foreman.run_pass()
            elapsed = time.perf_counter() - started
        seq_scans = sequential_scans(connection, queries) if explain else []
        transaction.set_rollback(True)
    report["queries"] = len(queries)
    return elapsed, report, seq_scans


def sequential_scans(connection, queries: list[tuple[str, tuple]]) -> list[str]:
    found, seen = [], set()
    with connection.cursor() as cursor:
        for sql, params in queries:
            if not sql.lstrip().upper().startswith("SELECT") or sql in seen:
                continue
            seen.add(sql)
            cursor.execute("EXPLAIN " + sql, params)
            plan = "\n".join(line for (line,) in cursor.fetchall())
            scanned = set(re.findall(r"Seq Scan on (\w+)", plan))
            if scanned & {spec[0] for spec in KINDS.values()}:
                found.append(f"{sql}\n{plan}")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--finished", type=int, default=1_000_000)
    parser.add_argument("--attention", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    args = parser.parse_args()

    args.database_url, stop_server = postgres_server(args.database_url, "foreman_scan")
    alone_url, drop_alone = create_database(args.database_url)
    full_url, drop_full = create_database(args.database_url)
    alone_db, full_db = urlsplit(alone_url).path[1:], urlsplit(full_url).path[1:]
    os.environ["DATABASE_URL"] = alone_url
    os.environ.setdefault("REFINERY_HOME", tempfile.mkdtemp(prefix="refinery-bench-"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "refinery.settings"
    os.environ["REFINERY_LOG_LEVEL"] = "ERROR"
    os.environ["REFINERY_DISPATCHER"] = "local"
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        now = datetime.now(UTC)
        for name, finished in ((alone_db, 0), (full_db, args.finished)):
            use_database(name)
            call_command("migrate", verbosity=0)
            started = time.perf_counter()
            with connection.cursor() as cursor:
                for kind, n in split(args.attention).items():
                    copy_rows(cursor.cursor, kind, attention_rows(kind, n, now))
                for kind, n in split(finished).items():
                    copy_rows(cursor.cursor, kind, finished_rows(kind, n, now))
                cursor.execute("ANALYZE")
            took = time.perf_counter() - started
            print(f"{name}: {args.attention:,} jobs needing attention and {finished:,} finished "
                  f"(filled in {took:.0f} s)", flush=True)  # fmt: skip

        # Alternate between the two databases, so that whatever else the machine
        # does slows both alike; the first pass of each warms up and is not timed.
        times = {alone_db: [], full_db: []}
        for repeat in range(args.repeats + 1):
            for name in times:
                use_database(name)
                elapsed, report, seq_scans = time_pass(explain=repeat == 0 and name == full_db)
                if repeat:
                    times[name].append(elapsed)
                elif name == full_db:
                    print(f"one pass: {', '.join(f'{n} {w}' for w, n in sorted(report.items()))}")
                    scans = seq_scans

        a, b = statistics.median(times[alone_db]), statistics.median(times[full_db])
        for label, name, median in (("alone", alone_db, a), ("among finished", full_db, b)):
            runs = ", ".join(f"{t * 1000:.0f}" for t in times[name])
            print(f"pass, {args.attention:,} {label:<15} median {median * 1000:7.0f} ms ({runs})")
        print(f"ratio: {b / a:.2f} (goal: at most 2)")
        if scans:
            print("sequential scans of job tables:\n" + "\n\n".join(scans))
            return 1
        print("no query of a pass scans a job table sequentially")
        return 0 if b / a <= 2 else 1
    finally:
        drop_alone()
        drop_full()
        stop_server()


if __name__ == "__main__":
    sys.exit(main())
