"""Dispatch overhead: 2,000 trivial jobs through send_job → worker start → end,
on the local dispatcher and through the Nomad stand-in, each against the floor
of the same rows' INSERT and UPDATEs in raw SQL.

    .venv/bin/python bench/dispatch.py [--jobs 2000] [--database-url URL]

The database is `--database-url`, else DATABASE_URL, else a new SQLite file in
a temporary folder; use an empty database (the bench adds rows and deletes
them at the end). Prints one ratio per dispatcher: its time / the floor's time.
Goal for the local dispatcher: at most 3.

What each run does, for the same number of ProcessorJob rows (pipeline
smoke_test, no batches):

- **floor**: per row, in raw SQL through Django's connection, each statement
  in autocommit as the ORM's are: one INSERT of the row as the ORM would write
  it, then UPDATE to queued, UPDATE to running, UPDATE to succeeded (the same
  columns and conditions as the transition methods).
- **local**: `ProcessorJob.objects.create`, then `send_job(job)` outside any
  transaction, so the outbox sends it at once: the pause and cap checks, the
  LocalDispatcher, `mark_queued`. Then a worker's claim loop over all of
  them: `claim_next_job` (the real claim: SELECT … FOR UPDATE SKIP LOCKED on
  PostgreSQL, the conditional UPDATE on SQLite) and `mark_succeeded`.
- **nomad**: the same create and `send_job`, with REFINERY_DISPATCHER=nomad:
  the NomadDispatcher dispatches `REFINERY_PROCESSOR_1024` over HTTP to the
  stand-in (demo/nomad_standin, run_children=False, so no process starts; the
  stand-in schedules a virtual allocation), then `mark_queued` with the
  dispatched ID. Then, per job, what `manage.py run_job` does in the task
  before and after the job's own work (reading the row, `mark_started` with
  the NOMAD_JOB_ID, `mark_succeeded`), and the stand-in ends the allocation
  (`finish_allocation`, in process).

Not measured, honestly: no worker or task process is started or forked, no job
code runs, no heartbeat or log is written (those cost the same on both
dispatchers and dwarf all of this). The stand-in runs in threads of this
process, so its CPU time (HTTP parsing, its scheduler, which is linear in the
live allocations) counts towards the nomad figure: a real Nomad server would
do that work elsewhere, and add a network round trip instead.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))


def setup_django(database_url: str | None) -> None:
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    elif not os.environ.get("DATABASE_URL"):
        home = tempfile.mkdtemp(prefix="refinery-bench-")
        os.environ["REFINERY_HOME"] = home
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "refinery.settings")
    os.environ["REFINERY_LOG_LEVEL"] = "ERROR"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


# --- the floor -------------------------------------------------------------------------------


def floor(n: int) -> float:
    from django.db import connection
    from django.utils import timezone

    from common.models import ProcessorJob

    meta = ProcessorJob._meta
    table = connection.ops.quote_name(meta.db_table)
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    insert = f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})"
    returning = connection.vendor == "postgresql"
    if returning:
        insert += " RETURNING id"

    def when():
        return meta.get_field("start_time").get_db_prep_value(timezone.now(), connection)

    queued = (
        f"UPDATE {table} SET state = %s, dispatch_id = %s, dispatched_at = %s "
        "WHERE id = %s AND state = %s"
    )
    running = (
        f"UPDATE {table} SET state = %s, worker_id = %s, worker_version = %s, start_time = %s, "
        "heartbeat_at = %s, dispatch_id = %s WHERE id = %s AND state IN (%s, %s)"
    )
    succeeded = (
        f"UPDATE {table} SET state = %s, end_time = %s, failure_reason = %s "
        "WHERE id = %s AND state = %s"
    )
    started = time.perf_counter()
    ids = []
    with connection.cursor() as cursor:
        for _ in range(n):
            row = ProcessorJob(pipeline="smoke_test")
            values = [f.get_db_prep_save(f.pre_save(row, True), connection) for f in fields]
            cursor.execute(insert, values)
            job_id = cursor.fetchone()[0] if returning else cursor.lastrowid
            cursor.execute(queued, ["queued", "local", when(), job_id, "created"])
            ids.append(job_id)
        for job_id in ids:
            now = when()
            cursor.execute(
                running, ["running", "bench", "1", now, now, "claim", job_id, "created", "queued"]
            )
            cursor.execute(succeeded, ["succeeded", when(), "", job_id, "running"])
    return time.perf_counter() - started


# --- the dispatchers -------------------------------------------------------------------------


def local(n: int) -> float:
    from common.models import ProcessorJob
    from runner.dispatch import send_job
    from runner.dispatch.local import claim_next_job

    started = time.perf_counter()
    for _ in range(n):
        send_job(ProcessorJob.objects.create(pipeline="smoke_test"))
    done = 0
    while (job := claim_next_job("bench-worker", "1", kinds=("processor",))) is not None:
        job.mark_succeeded()
        done += 1
    elapsed = time.perf_counter() - started
    assert done == n, f"the worker ran {done} of {n} jobs"
    return elapsed


def nomad(n: int) -> float:
    from django.conf import settings

    from common.models import JobState, ProcessorJob
    from demo.nomad_standin import NomadStandin, fake_node
    from runner.dispatch import base, send_job
    from runner.nomad.register import register_all
    from runner.nomad.specs import all_specs

    node = fake_node(cpu_mhz=10**9, memory_mb=10**9, cores=256)
    with NomadStandin(run_children=False, nodes=[node]) as standin:
        settings.REFINERY_DISPATCHER = "nomad"
        settings.REFINERY_NOMAD_ADDR = standin.address
        settings.REFINERY_NOMAD_TOKEN = ""
        base._dispatcher.cache_clear()
        register_all(all_specs())
        started = time.perf_counter()
        jobs = []
        for _ in range(n):
            job = ProcessorJob.objects.create(pipeline="smoke_test")
            send_job(job)
            jobs.append(job.pk)
        for job_id in jobs:
            job = ProcessorJob.objects.get(pk=job_id)  # what run_job does in the task
            assert job.mark_started("nomad:bench-alloc", "1", job.dispatch_id), job
            job.mark_succeeded()
            standin.finish_allocation(job.dispatch_id, 0)
        elapsed = time.perf_counter() - started
        settings.REFINERY_DISPATCHER = "local"
        base._dispatcher.cache_clear()
        ran = ProcessorJob.objects.filter(pk__in=jobs, state=JobState.SUCCEEDED)
        assert ran.count() == n and len(standin.children("REFINERY_PROCESSOR_1024")) == n
    return elapsed


def clean() -> None:
    from common.models import ProcessorJob

    ProcessorJob.objects.all().delete()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    setup_django(args.database_url)
    from django.db import connection

    from common.models import ProcessorJob

    if ProcessorJob.objects.exists():
        sys.exit("the database already has processor jobs: use an empty database")
    n = args.jobs
    results: dict[str, list[float]] = {}
    # The floor runs first and last, and counts its faster run: disk and cache
    # noise then never flatters the dispatchers.
    for name, run in (("floor", floor), ("local", local), ("nomad", nomad), ("floor", floor)):
        try:
            results.setdefault(name, []).append(run(n))
        finally:
            clean()
    base = min(results["floor"])
    results = {name: min(times) for name, times in results.items()}
    print(f"{n} trivial jobs on {connection.vendor}: send_job → worker start → end")
    print(f"  floor (raw SQL INSERT + 3 UPDATEs per row): {base:6.2f} s")
    for name in ("local", "nomad"):
        ratio = results[name] / base
        goal = "  (goal ≤ 3)" if name == "local" else ""
        print(f"  {name:5}: {results[name]:6.2f} s   ratio {ratio:5.2f}{goal}")


if __name__ == "__main__":
    main()
