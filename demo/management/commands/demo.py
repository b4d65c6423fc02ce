"""`manage.py demo`: the refinery's main job end to end, offline.

A loopback HTTP server serves a small generated organism in Ensembl's own
shapes (REST JSON, an FTP-style tree with CHECKSUMS); the refinery surveys it,
downloads the genome and annotation once, builds the two Salmon indices with
local worker processes, and prints what it did and where the results are.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from common.models import (
    DownloaderJob,
    JobState,
    ProcessorJob,
    SurveyJob,
    TranscriptomeIndex,
)
from common.progress import Progress
from common.storage import permanent_storage

DIVISION = "EnsemblFungi"
TIMEOUT_S = 600


class Command(BaseCommand):
    help = (
        "Run the refinery's main job end to end on the embedded defaults, offline: survey a "
        "generated demo organism served in Ensembl's shapes on loopback, download it, build its "
        "two Salmon transcriptome indices, and print a summary."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--genes", type=int, default=400, help="genes in the demo organism (default 400)"
        )
        parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")

    def handle(self, *args, genes: int, workers: int, **options):
        started = time.monotonic()
        call_command("migrate", verbosity=0)
        with tempfile.TemporaryDirectory(prefix="refinery-demo-") as folder:
            self.refine_demo_organism(Path(folder), genes, workers)
        self.summarise(time.monotonic() - started)

    def refine_demo_organism(self, source: Path, genes: int, workers: int) -> None:
        from demo.ensembl_server import EnsemblServer, ServedGenome
        from demo.organism import generate_organism

        organism = generate_organism(source, n_genes=genes, seed=1)
        self.say(
            f"1. Generated {organism.display_name}: {genes} genes, "
            f"{len(organism.transcript_ids())} transcripts (deterministic, seed 1)"
        )
        genome = ServedGenome.from_organism(organism, division=DIVISION)
        with EnsemblServer([genome], cache_dir=source / "cache") as server:
            settings.ENSEMBL_REST_URL = server.rest_url
            settings.ENSEMBL_FTP_URL = server.ftp_url
            settings.ENSEMBL_GENOMES_FTP_URL = server.divisions_ftp_url
            self.say(f"2. Serving it in Ensembl's shapes at {server.base_url} (loopback only)")
            self.say(f"3. Surveying {DIVISION}:")
            call_command("survey", "ensembl", "--division", DIVISION, "--species", organism.species)
            self.run_workers(server, workers)

    def say(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()

    def run_workers(self, server, count: int) -> None:
        """Worker processes, as an operator would run them, until no job is left."""
        self.say(f"4. Running {count} local worker processes until every job has finished:")
        env = {
            **os.environ,
            "REFINERY_HOME": str(settings.REFINERY_HOME),
            "ENSEMBL_REST_URL": server.rest_url,
            "ENSEMBL_FTP_URL": server.ftp_url,
            "ENSEMBL_GENOMES_FTP_URL": server.divisions_ftp_url,
            "REFINERY_WORKER_POLL_S": "0.2",
        }
        manage = Path(settings.BASE_DIR) / "manage.py"
        log = open(Path(settings.REFINERY_HOME) / "demo-workers.log", "ab")  # noqa: SIM115
        processes = [
            subprocess.Popen(
                [sys.executable, str(manage), "worker", "--until-idle"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            for _ in range(count)
        ]
        deadline = time.monotonic() + TIMEOUT_S
        with Progress(3, "   jobs finished") as progress:
            while any(p.poll() is None for p in processes):
                finished = sum(
                    m.objects.filter(state__in=(JobState.SUCCEEDED, JobState.FAILED)).count()
                    for m in (DownloaderJob, ProcessorJob)
                )
                progress.advance(finished - progress.done)
                if time.monotonic() > deadline:
                    for p in processes:
                        p.kill()
                    raise CommandError(f"the demo's jobs did not finish in {TIMEOUT_S} s")
                time.sleep(0.3)
        log.close()
        if any(p.returncode for p in processes):
            raise CommandError(f"a worker failed: see {log.name}")

    def summarise(self, elapsed: float) -> None:
        self.say("\n5. What the refinery did:")
        jobs = [*SurveyJob.objects.all(), *DownloaderJob.objects.all(), *ProcessorJob.objects.all()]
        for job in sorted(jobs, key=lambda j: j.created_at):
            what = getattr(job, "pipeline", "") or getattr(job, "downloader_task", "") or job.source
            took = f"{job.duration.total_seconds():6.1f} s" if job.duration else "      -"
            reason = f"  {job.failure_reason.splitlines()[0]}" if job.failure_reason else ""
            self.say(f"   {job.kind:<10} {job.pk:>4}  {what:<26} {job.state:<9} {took}{reason}")
        indices = list(TranscriptomeIndex.objects.select_related("computed_file__provenance"))
        self.say("\n6. The transcriptome indices:")
        storage = permanent_storage()
        for index in indices:
            result = index.computed_file
            provenance = result.provenance
            self.say(f"   {index}")
            self.say(f"      file:       {storage.location(result.key)}")
            self.say(f"      size:       {result.size:,} bytes, sha256 {result.sha256[:16]}…")
            tools = ", ".join(f"{k} {v}" for k, v in sorted(provenance.tools.items()))
            self.say(f"      tools:      {tools}")
            self.say(f"      commands:   {len(provenance.commands)} recorded")
            for item in provenance.inputs:
                self.say(f"      input:      {item['filename']} (sha256 {item['sha256'][:16]}…)")
        failed = [j for j in jobs if j.state != JobState.SUCCEEDED]
        home = settings.REFINERY_HOME
        self.say(
            f"\nDone in {elapsed:.0f} s. Everything lives under {home}.\n"
            "Next:\n"
            f"  job logs:   {home}/storage/permanent/logs/\n"
            f"  the admin:  REFINERY_HOME={home} .venv/bin/python manage.py createsuperuser\n"
            f"              REFINERY_HOME={home} .venv/bin/python manage.py runserver --insecure, "
            "then http://127.0.0.1:8000/admin/"
        )
        if failed or len(indices) != 2:
            raise CommandError(
                f"{len(failed)} job(s) did not succeed and {len(indices)} of 2 indices were built"
            )
