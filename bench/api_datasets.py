"""Aggregated RNA-seq data at scale: /api/samples/ pages and a 1,000-sample
dataset, each against the floor the database gives.

    .venv/bin/python bench/api_datasets.py [--samples 100000] [--genes 20000]
        [--dataset-samples 1000] [--pages 40] [--repeat 5] [--database-url URL]

PostgreSQL only: the bench creates a database of its own on the server that
`--database-url` or DATABASE_URL names (and drops it at the end), or starts a
private throwaway server (demo.services.Postgres) when neither is set.

1. It migrates the empty database and fills it on the server's side (INSERT …
   SELECT from generate_series): `--samples` samples of one organism (and a
   tenth as many of another), a study per 100 samples, one run (batch) per
   sample, and each run's Quantification with `--genes` float64 counts and TPMs
   (8 bytes a gene each, as salmon_quant stores them; the arrays come from 16
   random templates).
2. Pages: `--pages` GETs of `/api/samples/?organism=…&limit=100&offset=…` at
   random offsets through Django's test client (the whole DRF stack, in
   process), against the bare indexed SQL that reads the same page's samples,
   runs and metrics. It prints both p95s and their ratio (goal: at most 2).
3. A dataset: the dataset_matrix pipeline (`run_processor`: the matrix, the
   gzip TSV and the Parquet file, stored in local storage with their checksums
   and provenance) for `--dataset-samples` samples' counts, against a plain
   read of the same bytes (the same quantifications' count arrays fetched from
   PostgreSQL with a SELECT). It prints both times and their ratio (goal: at
   most 2), and, for information, the same arrays read the way the pipeline
   reads them (binary COPY, which skips the SELECT's hex encoding). The
   pipeline runs in a child forked from the bench, as a worker runs each job,
   so that each build imports its libraries as a worker's would. This is
   done `--repeat` times, each time for other random samples: the plain read
   alone varies by half between runs on a small machine, so the median ratio
   is the figure.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from bench.postgres import create_database, postgres_server  # noqa: E402 (after the path is set)

ORGANISM, OTHER = "Homo sapiens", "Mus musculus"
TEMPLATES = 16


def fill(samples: int, genes: int) -> None:
    """Everything on the server's side, in a few statements."""
    import numpy as np
    from django.db import connection
    from django.utils import timezone

    from common.models import (
        Batch,
        ComputedFile,
        GeneSet,
        Organism,
        ProcessorJob,
        Provenance,
        TranscriptomeIndex,
    )

    human = Organism.objects.create(scientific_name=ORGANISM, taxonomy_id=9606)
    mouse = Organism.objects.create(scientific_name=OTHER, taxonomy_id=10090)
    job = ProcessorJob.objects.create(pipeline="salmon_quant")
    now = timezone.now()
    provenance = Provenance.objects.create(
        processor_job=job, processor_name="bench", processor_version="1", started_at=now,
        ended_at=now,
    )  # fmt: skip
    computed = ComputedFile.objects.create(
        key="bench/index", filename="index", format="tar.gz", size=1, sha256="0" * 64,
        processor_job=job, provenance=provenance,
    )  # fmt: skip
    index_batch = Batch.objects.create(
        source="ensembl", accession="homo_sapiens@114", pipeline_required="transcriptome_index_long"
    )
    index = TranscriptomeIndex.objects.create(
        organism=human, batch=index_batch, length="long", k=31, source_release="114",
        assembly="GRCh38", salmon_version="1.10.1", computed_file=computed,
    )  # fmt: skip
    gene_set = GeneSet.for_genes([f"ENSG{n:011d}" for n in range(genes)])
    rng = np.random.default_rng(1)
    others = samples // 10
    total = samples + others
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE bench_template (n int, counts bytea, tpm bytea)")
        for n in range(TEMPLATES):
            counts = np.round(rng.gamma(0.5, 200.0, genes), 3)
            tpm = np.round(counts / counts.sum() * 1e6, 6)
            cursor.execute(
                "INSERT INTO bench_template VALUES (%s, %s, %s)",
                [n, counts.astype("<f8").tobytes(), tpm.astype("<f8").tobytes()],
            )
        cursor.execute(
            "INSERT INTO common_experiment (source, accession, alternate_accession, title, "
            "created_at) SELECT 'ena', 'PRJNA' || g, '', 'study ' || g, now() "
            "FROM generate_series(1, %s) g",
            [total // 100 + 1],
        )
        cursor.execute(
            "INSERT INTO common_sample (source, accession, alternate_accession, title, "
            "organism_id, platform, attributes, created_at) "
            "SELECT 'ena', 'SAMN' || lpad(g::text, 9, '0'), '', 'sample ' || g, "
            "CASE WHEN g <= %s THEN %s ELSE %s END, 'ILLUMINA', '{}', now() "
            "FROM generate_series(1, %s) g",
            [samples, human.pk, mouse.pk, total],
        )
        cursor.execute(
            "INSERT INTO common_sample_experiments (sample_id, experiment_id) "
            "SELECT s.id, e.id FROM common_sample s JOIN common_experiment e "
            "ON e.accession = 'PRJNA' || (substr(s.accession, 5)::int / 100 + 1)"
        )
        cursor.execute(
            "INSERT INTO common_batch (source, accession, variant, organism_id, "
            "pipeline_required, status, metadata, created_at, updated_at) "
            "SELECT 'ena', 'SRR' || substr(accession, 5), '', organism_id, 'salmon_quant', "
            "'processed', '{\"layout\": \"SINGLE\"}', now(), now() FROM common_sample"
        )
        cursor.execute(
            "INSERT INTO common_sample_batches (sample_id, batch_id) "
            "SELECT s.id, b.id FROM common_sample s JOIN common_batch b "
            "ON b.accession = 'SRR' || substr(s.accession, 5)"
        )
        started = time.perf_counter()
        cursor.execute(
            "INSERT INTO common_quantification (batch_id, processor_job_id, "
            "transcriptome_index_id, mapping_rate, library_type, reads_processed, low_quality, "
            "gene_set_id, count_values, tpm_values, created_at) "
            "SELECT b.id, %s, %s, 0.9, 'U', 1000000, false, %s, t.counts, t.tpm, now() "
            "FROM common_batch b JOIN bench_template t ON t.n = b.id %% %s "
            "WHERE b.source = 'ena'",
            [job.pk, index.pk, gene_set.pk, TEMPLATES],
        )
        cursor.execute("ANALYZE")
    size = samples * genes * 16 / 1e9
    print(
        f"filled: {samples:,} {ORGANISM} samples and {others:,} {OTHER}, one run each, "
        f"{genes:,} genes a quantification ({size:.1f} GB of arrays; "
        f"quantifications in {time.perf_counter() - started:.0f} s)",
        flush=True,
    )


def p95(times: list[float]) -> float:
    return statistics.quantiles(times, n=20)[-1]


def time_pages(samples: int, pages: int) -> tuple[list[float], list[float]]:
    """The API's page and the bare SQL for the same page, alternating."""
    from django.db import connection
    from django.test import Client

    client = Client()
    bare = (
        "SELECT s.accession, s.title, s.platform, b.accession, q.mapping_rate, "
        "q.library_type, q.reads_processed, q.low_quality, gs.size "
        "FROM common_sample s JOIN common_organism o ON o.id = s.organism_id "
        "LEFT JOIN common_sample_batches sb ON sb.sample_id = s.id "
        "LEFT JOIN common_batch b ON b.id = sb.batch_id "
        "LEFT JOIN common_quantification q ON q.batch_id = b.id "
        "LEFT JOIN common_geneset gs ON gs.id = q.gene_set_id "
        "WHERE upper(o.scientific_name) = upper(%s) ORDER BY s.accession LIMIT 100 OFFSET %s"
    )
    rng = random.Random(7)
    api_times, sql_times = [], []
    for number in range(pages + 2):
        offset = rng.randrange(0, max(1, samples - 100))
        started = time.perf_counter()
        response = client.get(
            "/api/samples/", {"organism": ORGANISM, "limit": 100, "offset": offset}
        )
        api = time.perf_counter() - started
        assert response.status_code == 200, response.content[:300]
        assert len(response.json()["results"]) == 100
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(bare, [ORGANISM, offset])
            assert len(cursor.fetchall()) == 100
        sql = time.perf_counter() - started
        if number >= 2:  # two warm-ups
            api_times.append(api)
            sql_times.append(sql)
    return api_times, sql_times


def in_forked_child(work) -> float:
    """Seconds `work()` takes in a child forked from this process, as a worker runs
    each job (runner/supervisor.py): the child imports what the job needs (polars,
    pyarrow) itself, as a worker's child does, so every build pays that once."""
    from django.db import connections

    connections.close_all()  # a forked child must not share the parent's connections
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.close(read)
            started = time.perf_counter()
            work()
            os.write(write, f"{time.perf_counter() - started}".encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as answer:
        seconds = answer.read()
    _, status = os.waitpid(pid, 0)
    if status != 0 or not seconds:
        sys.exit("the dataset build failed in its child process")
    return float(seconds)


def time_dataset(count: int) -> tuple[float, float, float, int]:
    """The pipeline for `count` samples, the plain read of the same arrays, and
    their read through binary COPY."""
    from django.db import connection

    from api.datasets import create_dataset
    from common.models import DatasetValue, Organism, ProcessorJob, Sample
    from processors.dataset_matrix import build_dataset
    from processors.pg_copy import CopyRows
    from runner.lifecycle import start_here

    chosen = list(Sample.objects.filter(organism__scientific_name=ORGANISM).order_by("?")[:count])
    organism = Organism.objects.get(scientific_name=ORGANISM)
    asked = {
        "samples": [s.accession for s in chosen], "experiments": [], "value": DatasetValue.COUNTS,
        "sample_rows": chosen, "organism_row": organism,
    }  # fmt: skip
    dataset = create_dataset(asked, user=None)
    job = ProcessorJob.objects.get(batches__dataset=dataset)
    ids = [s.pk for s in chosen]

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT q.count_values FROM common_quantification q "
            "JOIN common_sample_batches sb ON sb.batch_id = q.batch_id "
            "WHERE sb.sample_id = ANY(%s)",
            [ids],
        )
        read_bytes = sum(len(bytes(row[0])) for row in cursor.fetchall())
    plain = time.perf_counter() - started

    started, copied = time.perf_counter(), []
    with connection.cursor() as cursor:
        query = cursor.mogrify(
            "COPY (SELECT q.count_values FROM common_quantification q "
            "JOIN common_sample_batches sb ON sb.batch_id = q.batch_id "
            "WHERE sb.sample_id = ANY(%s)) TO STDOUT (FORMAT binary)",
            [ids],
        ).decode()
        cursor.copy_expert(query, CopyRows(lambda fields: copied.append(len(fields[0]))))
    through_copy = time.perf_counter() - started
    assert sum(copied) == read_bytes

    start_here(job)
    pipeline = in_forked_child(lambda: build_dataset(job))
    job.refresh_from_db()
    assert job.state == "succeeded", job.failure_reason
    return pipeline, plain, through_copy, read_bytes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--genes", type=int, default=20_000)
    parser.add_argument("--dataset-samples", type=int, default=1_000)
    parser.add_argument("--pages", type=int, default=40)
    parser.add_argument(
        "--repeat", type=int, default=5,
        help="datasets built (each of other random samples, each beside its own plain read); "
        "the ratio reported is the median's (default 5)",
    )  # fmt: skip
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    args = parser.parse_args()

    args.database_url, stop_server = postgres_server(args.database_url, "api_datasets")
    url, drop = create_database(args.database_url)
    home = tempfile.mkdtemp(prefix="refinery-bench-")
    os.environ.update(
        DATABASE_URL=url, REFINERY_HOME=home, DJANGO_SETTINGS_MODULE="refinery.settings",
        REFINERY_LOG_LEVEL="ERROR", REFINERY_DISPATCHER="local",
    )  # fmt: skip
    try:
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command

        settings.ALLOWED_HOSTS = ["testserver"]
        call_command("migrate", verbosity=0)
        print(f"database {urlsplit(url).path[1:]}", flush=True)
        fill(args.samples, args.genes)

        api_times, sql_times = time_pages(args.samples, args.pages)
        api, sql = p95(api_times), p95(sql_times)
        print(
            f"/api/samples/ page of 100: p95 {api * 1000:.1f} ms (median "
            f"{statistics.median(api_times) * 1000:.1f}); bare SQL p95 {sql * 1000:.1f} ms "
            f"(median {statistics.median(sql_times) * 1000:.1f}); ratio {api / sql:.2f} "
            "(goal: at most 2)"
        )
        ratios = []
        for attempt in range(1, max(1, args.repeat) + 1):
            pipeline, plain, through_copy, read_bytes = time_dataset(args.dataset_samples)
            ratios.append(pipeline / plain)
            print(
                f"dataset {attempt} of {args.dataset_samples:,} samples x {args.genes:,} genes: "
                f"pipeline {pipeline:.2f} s; plain read of the same {read_bytes / 1e6:.0f} MB "
                f"{plain:.2f} s; ratio {pipeline / plain:.2f}; the same read through binary "
                f"COPY, as the pipeline reads: {through_copy:.2f} s",
                flush=True,
            )
        print(
            f"dataset build / plain read: median {statistics.median(ratios):.2f} of "
            f"{len(ratios)} (range {min(ratios):.2f}-{max(ratios):.2f}; goal: at most 2)"
        )
        return 0
    finally:
        drop()
        stop_server()


if __name__ == "__main__":
    sys.exit(main())
