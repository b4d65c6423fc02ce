"""The engine API's bookkeeping cost: assign → keepalive → completed round trips
per second for 1, 4 and 16 concurrent engines over HTTP, against the same
claims made by the local workers' SQL in the same script.

    .venv/bin/python bench/engine_api.py [--jobs 400] [--repeat 9] [--server-processes N]
        [--concurrency 1,4,16] [--client http.client|requests] [--database-url URL]

PostgreSQL only: the bench creates a database of its own on the server that
`--database-url` or DATABASE_URL names (and drops it at the end), or starts a
private throwaway server (demo.services.Postgres) when neither is set.

- It queues `--jobs` basecalling jobs per round, each with a batch of one
  small file in (local) temporary storage, and registers 16 engines.
- HTTP: bench/wsgi_server.py (Django's threaded development server, in
  `--server-processes` pre-forked processes, by default one per core, with
  TCP_NODELAY and persistent database connections, as a production server
  runs and as the README advises) serves the API; N threads, each an engine
  with its own token and kept-alive connection, loop
  POST assign → POST keepalive → POST completed until the queue is empty,
  with the bodies a real engine sends. The completion reports a failure
  (`success=false`): what is measured is the API's bookkeeping (token, claim,
  the ASSIGNED folder of links, heartbeat, completion claim and transition),
  not the check of basecalls, which depends on the data.
- The engines' client is the standard library's http.client by default. Real
  engines run on GPU servers of their own; here their client shares the two
  cores with the server being measured, and `requests` (what
  `manage.py basecall_engine` uses) takes four times the CPU per round trip
  that http.client does, which would be counted as the API's cost.
  `--client requests` measures with it all the same.
- Local: N threads, each a worker, loop `Job.claim_next` → `job.beat()` →
  `job.mark_failed()` on the same kind of queue: the same three transitions
  with the local worker's SQL, without HTTP.
- On both sides the clock starts once every engine or worker has its
  connections (an engine its HTTP connection, and the server's thread for it
  its database connection; a worker its database connection), as a server and
  a worker keep them: a round measures the claims, not connecting.

It prints round trips per second for both at each N, the ratio of their costs
at 16 (goal: at most 3), and checks that no job was claimed twice (each job
ends failed exactly once, by one engine or worker).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from bench.engine_clients import ASSIGN_BODY, CLIENTS, FAILURE_FORM  # noqa: E402
from bench.postgres import create_database, postgres_server  # noqa: E402 (after the path is set)

CONCURRENCY = (1, 4, 16)


def queue_jobs(count: int, round_name: str) -> list[int]:
    """`count` queued basecalling jobs, each with a batch of one stored file."""
    from django.utils import timezone

    from common.models import Batch, OriginalFile, ProcessorJob
    from common.storage import temporary_storage

    storage = temporary_storage()
    now = timezone.now()
    batches = Batch.objects.bulk_create(
        Batch(source="nanopore_runs", accession=f"bench-{round_name}", variant=str(i),
              pipeline_required="basecalling")
        for i in range(count)
    )  # fmt: skip
    files = []
    for i in range(len(batches)):
        key = f"bench/{round_name}/{i}/batch_{i}.pod5"
        stored = storage.put_stream(__import__("io").BytesIO(b"pod5 stand-in\n"), key)
        files.append(
            OriginalFile(
                filename=f"batch_{i}.pod5", source_url=f"file:///bench/{round_name}/{i}.pod5",
                size=stored.size, sha256=stored.sha256, temp_key=key, is_downloaded=True,
            )
        )  # fmt: skip
    files = OriginalFile.objects.bulk_create(files)
    for batch, original in zip(batches, files, strict=True):
        original.batches.add(batch)
    jobs = ProcessorJob.objects.bulk_create(
        ProcessorJob(pipeline="basecalling", created_at=now) for _ in range(count)
    )
    for job, batch in zip(jobs, batches, strict=True):
        job.batches.add(batch)
        job.mark_queued("local")  # queued, as the local dispatcher leaves them
    return [job.pk for job in jobs]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_round(
    server: str, tokens: dict[str, str], engines: int, client: str = "http.client"
) -> tuple[int, float]:
    """Engines loop assign → keepalive → completed until assign answers 204."""
    done = [0] * engines
    errors: list[str] = []

    def engine(index: int, ready: threading.Barrier) -> None:
        name = f"bench{index}"
        http = CLIENTS[client](server, tokens[name])
        # The connection, the server's thread for it and that thread's database
        # connection are made before the clock starts: a server keeps them.
        http.get("/api/engines/heartbeat")
        ready.wait()
        while True:
            status, body = http.post(f"{server}/api/engines/{name}/assign", json_body=ASSIGN_BODY)
            if status == 204:
                return
            if status != 200:
                errors.append(f"assign {status}: {body[:200]!r}")
                return
            job = json.loads(body)["jobs"][0]
            beat, _ = http.post(job["keepalive"])
            end, _ = http.post(job["completed"], form=FAILURE_FORM)
            if beat != 200 or end != 200:
                errors.append(f"keepalive {beat}, completed {end}")
                return
            done[index] += 1

    elapsed = timed_threads(engine, engines)
    if errors:
        raise SystemExit(f"engine API errors: {errors[:3]}")
    return sum(done), elapsed


def timed_threads(target, count: int) -> float:
    """Run `target(index, ready)` in `count` threads; the seconds from when all
    of them have called `ready.wait()` (set up) until the last one returns."""
    ready = threading.Barrier(count + 1)
    threads = [threading.Thread(target=target, args=(i, ready)) for i in range(count)]
    for thread in threads:
        thread.start()
    ready.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def local_round(workers: int) -> tuple[int, float]:
    """Workers loop claim_next → beat → mark_failed until nothing is queued."""
    from django.db import connections

    from common.models import ProcessorJob

    done = [0] * workers

    def worker(index: int, ready: threading.Barrier) -> None:
        try:
            connections["default"].ensure_connection()  # a worker keeps its connection
            ready.wait()
            while True:
                job = ProcessorJob.claim_next(
                    f"bench-worker:{index}", "bench", f"local:bench:{index}",
                    pipelines=("basecalling",),
                )  # fmt: skip
                if job is None:
                    return
                job.beat()
                job.mark_failed("bench")
                done[index] += 1
        finally:
            connections.close_all()

    elapsed = timed_threads(worker, workers)
    return sum(done), elapsed


def measure_round(
    server: str,
    tokens: dict[str, str],
    engines: int,
    jobs: int,
    name: str,
    client: str,
    local_first: bool = False,
) -> tuple[float, float]:
    """Round trips per second over HTTP and with the local worker's SQL, each on a
    queue of `jobs` of its own, checked for duplicate claims. `local_first`
    swaps the order: rounds alternate it, so that a machine getting faster or
    slower over a round favours neither side."""

    def over_http() -> float:
        ids = queue_jobs(jobs, f"http{name}")
        count, took = http_round(server, tokens, engines, client)
        check_no_duplicate_claims(ids, "engine:bench")
        return count / took

    def local() -> float:
        ids = queue_jobs(jobs, f"local{name}")
        count, took = local_round(engines)
        check_no_duplicate_claims(ids, "bench-worker:")
        return count / took

    if local_first:
        local_rate = local()
        return over_http(), local_rate
    http_rate = over_http()
    return http_rate, local()


def check_no_duplicate_claims(ids: list[int], expected_worker_prefix: str) -> None:
    from common.models import ProcessorJob

    rows = ProcessorJob.objects.filter(pk__in=ids)
    states = set(rows.values_list("state", flat=True))
    if states != {"failed"} or rows.count() != len(ids):
        raise SystemExit(f"not every job ended once: states {states}")
    if rows.exclude(worker_id__startswith=expected_worker_prefix).exists():
        raise SystemExit("a job was finished by someone else than the round's claimers")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=400, help="queued jobs per round")
    parser.add_argument(
        "--server-processes",
        type=int,
        default=os.cpu_count() or 1,
        help="API server processes (default: one per core, as a production server runs; "
        "1 is one process, whose threads share one interpreter lock)",
    )
    parser.add_argument(
        "--repeat", type=int, default=9,
        help="rounds at each concurrency, alternating which side goes first; the ratio "
        "reported is the median's (default 9): on a shared virtual machine the same "
        "work's CPU time varies by a third from one second to the next",
    )  # fmt: skip
    parser.add_argument(
        "--concurrency",
        type=lambda text: tuple(sorted(int(n) for n in text.split(","))),
        default=CONCURRENCY,
        help="engines (and local workers) at once, comma-separated (default 1,4,16); "
        "the ratio reported is the largest's",
    )
    parser.add_argument(
        "--client",
        choices=sorted(CLIENTS),
        default="http.client",
        help="the engines' HTTP client (default http.client: the lightest, since on this "
        "machine the engines' client takes the cores the API server is measured on; "
        "requests: as manage.py basecall_engine sends them)",
    )
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    args = parser.parse_args()

    args.database_url, stop_server = postgres_server(args.database_url, "engine_api")
    url, drop = create_database(args.database_url)
    home = tempfile.mkdtemp(prefix="refinery-bench-")
    os.environ.update(
        DATABASE_URL=url, REFINERY_HOME=home, DJANGO_SETTINGS_MODULE="refinery.settings",
        REFINERY_LOG_LEVEL="ERROR", REFINERY_DISPATCHER="local",
    )  # fmt: skip
    web = None
    try:
        import django

        django.setup()
        from django.core.management import call_command

        from api.models import Engine
        from common.models import ProcessorJob

        call_command("migrate", verbosity=0)
        print(f"database {urlsplit(url).path[1:]}", flush=True)
        tokens = {}
        for i in range(max(args.concurrency)):
            import io

            out = io.StringIO()
            call_command("engines", "add", f"bench{i}", stdout=out, stderr=io.StringIO())
            tokens[f"bench{i}"] = out.getvalue().strip()
        port = free_port()
        web = subprocess.Popen(
            [sys.executable, str(PROJECT / "bench" / "wsgi_server.py"), str(port),
             str(args.server_processes)],
            cwd=PROJECT, env={**os.environ, "DATABASE_URL": f"{url}?conn_max_age=600"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        import requests

        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/api/engines/heartbeat", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the API server did not start")
            time.sleep(0.2)

        ratios: dict[int, list[float]] = {}
        for n in args.concurrency:
            for attempt in range(1, max(1, args.repeat) + 1):
                http_rate, local_rate = measure_round(
                    base, tokens, n, args.jobs, f"{n}-{attempt}", args.client,
                    local_first=attempt % 2 == 0,
                )  # fmt: skip
                ratios.setdefault(n, []).append(local_rate / http_rate)
                print(
                    f"{n:>2} concurrent: engine API {http_rate:7.1f} round trips/s; "
                    f"local worker SQL {local_rate:7.1f}/s; "
                    f"cost ratio {local_rate / http_rate:.2f}",
                    flush=True,
                )
        assert Engine.objects.count() == max(args.concurrency)
        assert not ProcessorJob.objects.filter(state__in=("queued", "running")).exists()
        top = ratios[max(args.concurrency)]
        print(
            f"at {max(args.concurrency)} engines ({args.server_processes} server process(es), "
            f"{args.client} client): an "
            f"engine API round trip costs {statistics.median(top):.2f}x the local claim, the "
            f"median of {len(top)} rounds (range {min(top):.2f}-{max(top):.2f}; goal: at most 3); "
            "no job was claimed twice",
            flush=True,
        )
        return 0
    finally:
        if web is not None:
            os.killpg(web.pid, 15)  # the server and its forked processes
            web.wait(10)
        drop()
        stop_server()
        shutil.rmtree(home, ignore_errors=True)  # its stored files and ASSIGNED folders


if __name__ == "__main__":
    sys.exit(main())
