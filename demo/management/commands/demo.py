"""`manage.py demo`: the refinery's main job end to end, offline.

A loopback HTTP server serves a small generated organism in Ensembl's own
shapes (REST JSON, an FTP-style tree with CHECKSUMS); the refinery surveys it,
downloads the genome and annotation once, builds the two Salmon indices with
local worker processes. Then an ENA stand-in serves a small RNA-seq study of
that organism; the refinery quantifies its runs against the index and builds a
dataset of the study, as a user of the API would ask for one. The demo prints
what it did and where the results are.
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
from django.core.management.base import CommandError
from rest_framework.authtoken.models import Token

from common.commands import RefineryCommand
from common.models import (
    ComputedFile,
    Dataset,
    DatasetState,
    DownloaderJob,
    JobState,
    ProcessorJob,
    Quantification,
    SequencingRun,
    SurveyJob,
    TranscriptomeIndex,
)
from common.models.jobs import UNFINISHED
from common.progress import Progress
from common.storage import permanent_storage

DIVISION = "EnsemblFungi"
TIMEOUT_S = 600


class Command(RefineryCommand):
    help = (
        "Run the refinery's main job end to end on the embedded defaults, offline: survey a "
        "generated demo organism served in Ensembl's shapes on loopback, download it, build its "
        "two Salmon transcriptome indices, and print a summary."
    )
    examples = """
make demo                                (the same, from a fresh clone)
REFINERY_HOME=/tmp/demo manage.py demo --genes 120 --workers 1
"""

    def add_arguments(self, parser):
        parser.add_argument(
            "--genes", type=int, default=400, help="genes in the demo organism (default 400)"
        )
        parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")

    def handle(self, *args, genes: int, workers: int, **options):
        started = time.monotonic()
        call_command("migrate", verbosity=0)
        with tempfile.TemporaryDirectory(prefix="refinery-demo-") as folder:
            organism = self.refine_demo_organism(Path(folder), genes, workers)
            self.quantify_study(organism, Path(folder) / "study", workers)
            self.archive_illumina_run(Path(folder) / "sequencers", workers)
            self.find_nanopore_run(Path(folder) / "minknow", workers)
        self.summarise(time.monotonic() - started)

    def refine_demo_organism(self, source: Path, genes: int, workers: int):
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
            self.say("4. Building its two Salmon transcriptome indices:")
            call_command("survey", "ensembl", "--division", DIVISION, "--species", organism.species)
            self.run_workers(
                workers,
                ENSEMBL_REST_URL=server.rest_url,
                ENSEMBL_FTP_URL=server.ftp_url,
                ENSEMBL_GENOMES_FTP_URL=server.divisions_ftp_url,
            )
        return organism

    def quantify_study(self, organism, folder: Path, workers: int) -> None:
        """An RNA-seq study of the organism from the ENA stand-in: its runs
        quantified against the index just built, then one dataset of them all."""
        from demo.ena_server import EnaServer
        from demo.rnaseq_study import DEMO_STUDY, study_runs

        runs = study_runs(organism, folder)
        server = EnaServer(runs).start()
        try:
            settings.ENA_PORTAL_URL, settings.ENA_FASTQ_URL = server.portal_url, server.fastq_url
            self.say(
                f"\n5. Serving study {DEMO_STUDY} in ENA's shapes at {server.base_url}: "
                f"{len(runs)} runs of simulated reads, 2 single-end and 2 paired-end"
            )
            self.say(f"6. Surveying ENA for {DEMO_STUDY}:")
            call_command("survey", "ena", "--study", DEMO_STUDY)
            self.run_workers(
                workers, ENA_PORTAL_URL=server.portal_url, ENA_FASTQ_URL=server.fastq_url
            )
        finally:
            server.stop()
        self.say(f"7. Asking for a dataset of {DEMO_STUDY}'s TPMs, as POST /api/datasets/ would:")
        self.dataset = ask_for_dataset(DEMO_STUDY)
        self.say(f"   dataset {self.dataset.pk}")
        self.run_workers(workers)

    def say(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()

    def archive_illumina_run(self, share: Path, workers: int) -> None:
        """A finished MiSeq run folder on the "instruments' share", around real base
        calls (Picard's test data) with a sample sheet: found, archived into
        storage with its manifest and verified, then demultiplexed into FASTQ by
        the built-in converter."""
        from demo.picard_run import write_picard_run

        folder = write_picard_run(share)
        # The demo does not wait the usual 15 minutes after RTAComplete.txt.
        settings.REFINERY_ILLUMINA_GRACE_S = 0
        self.say(f"\n8. An Illumina MiSeq run folder (real base calls), finished, at {folder}")
        self.say("   Surveying the share (grace period 0 s for the demo):")
        call_command("survey", "illumina_runs", str(share))
        self.run_workers(workers, REFINERY_ILLUMINA_GRACE_S="0", REFINERY_BCL_ENGINE="builtin")
        self.say("   The archive is verified: a Foreman pass sends the demultiplexing job on.")
        from foreman.passes import Foreman

        Foreman(outbox_grace_s=0).run_pass()
        self.run_workers(workers, REFINERY_BCL_ENGINE="builtin")

    def find_nanopore_run(self, root: Path, workers: int) -> None:
        """A finished MinKNOW run folder: found, its pod5 files batched, checked
        and stored; basecalling runs only where Dorado is (or on an engine)."""
        from demo.nanopore_run import make_nanopore_run

        run = make_nanopore_run(root, files=3)
        self.say(
            f"\n9. A Nanopore run in MinKNOW's layout (3 pod5 files of synthetic signal) at "
            f"{run.folder}"
        )
        self.say("   Surveying it:")
        call_command("survey", "nanopore_runs", str(root))
        self.run_workers(workers)

    def run_workers(self, count: int, **sources: str) -> None:
        """Worker processes, as an operator would run them, until no job is left;
        `sources` are the stand-ins' URLs, for the workers' settings."""
        self.say(f"   Running {count} local worker processes until every job has finished:")
        env = {
            **os.environ,
            "REFINERY_HOME": str(settings.REFINERY_HOME),
            "REFINERY_WORKER_POLL_S": "0.2",
            **sources,
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
        models = (DownloaderJob, ProcessorJob)
        already = sum(m.objects.exclude(state__in=UNFINISHED).count() for m in models)
        # Jobs make jobs (a download queues its processing): the total is not known.
        with Progress(None, "   jobs finished") as progress:
            while any(p.poll() is None for p in processes):
                finished = sum(m.objects.exclude(state__in=UNFINISHED).count() for m in models)
                progress.advance(finished - already - progress.done)
                if time.monotonic() > deadline:
                    for p in processes:
                        p.kill()
                    raise CommandError(f"the demo's jobs did not finish in {TIMEOUT_S} s")
                time.sleep(0.3)
        log.close()
        if any(p.returncode for p in processes):
            raise CommandError(f"a worker failed: see {log.name}")

    def summarise(self, elapsed: float) -> None:
        self.say("\n10. What the refinery did:")
        jobs = [*SurveyJob.objects.all(), *DownloaderJob.objects.all(), *ProcessorJob.objects.all()]
        for job in sorted(jobs, key=lambda j: j.created_at):
            what = getattr(job, "pipeline", "") or getattr(job, "downloader_task", "") or job.source
            took = f"{job.duration.total_seconds():6.1f} s" if job.duration else "      -"
            reason = f"  {job.failure_reason.splitlines()[0]}" if job.failure_reason else ""
            self.say(f"   {job.kind:<10} {job.pk:>4}  {what:<26} {job.state:<9} {took}{reason}")
        indices = self.show_indices()
        quantified = self.show_quantifications()
        dataset = self.show_dataset()
        illumina = self.show_illumina_run()
        waiting = self.show_nanopore_run()
        failed = [j for j in jobs if j.state != JobState.SUCCEEDED and j not in waiting]
        home = settings.REFINERY_HOME
        manage = f"REFINERY_HOME={home} .venv/bin/python manage.py"
        token, _ = Token.objects.get_or_create(user=dataset.created_by)
        self.say(
            f"\nDone in {elapsed:.0f} s. Everything lives under {home}.\n"
            "Next:\n"
            f"  job logs:   {home}/storage/permanent/logs/\n"
            f"  the admin:  {manage} createsuperuser\n"
            f"              {manage} runserver --insecure, then http://127.0.0.1:8000/admin/\n"
            f"  the API:    curl http://127.0.0.1:8000/api/samples/?study=PRJNA900001\n"
            f"  the dataset: curl -o dataset.tsv.gz -H 'Authorization: Token {token}' "
            f"'http://127.0.0.1:8000/api/datasets/{dataset.pk}/download/?file=tsv'"
        )
        problems = []
        if failed:
            problems.append(f"{len(failed)} job(s) did not succeed")
        if len(indices) != 2:
            problems.append(f"{len(indices)} of 2 indices were built")
        if quantified != 4:
            problems.append(f"{quantified} of 4 runs were quantified")
        if dataset.state != DatasetState.READY:
            problems.append(f"the dataset is {dataset.state}")
        if illumina.state != "demultiplexed":
            problems.append(f"the Illumina run is {illumina.state}, not demultiplexed")
        if problems:
            raise CommandError("; ".join(problems))

    def show_indices(self) -> list[TranscriptomeIndex]:
        indices = list(TranscriptomeIndex.objects.select_related("computed_file__provenance"))
        self.say("\n11. The transcriptome indices:")
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
        return indices

    def show_quantifications(self) -> int:
        self.say("\n12. The study's runs, quantified:")
        rows = Quantification.objects.select_related("batch").order_by("batch__accession")
        for quantification in rows:
            batch = quantification.batch
            self.say(
                f"   {batch.accession}  {batch.metadata.get('layout', ''):<7} "
                f"{quantification.reads_processed:>6} reads, "
                f"{quantification.mapping_rate:.0%} mapped, {quantification.gene_set.size} genes"
            )
        return len(rows)

    def show_dataset(self) -> Dataset:
        dataset = Dataset.objects.select_related("matrix_file").get(pk=self.dataset.pk)
        self.say(f"\n13. Dataset {dataset.pk}: {dataset.state}")
        if dataset.matrix_file is not None:
            location = permanent_storage().location(dataset.matrix_file.key)
            self.say(
                f"   {dataset.genes} genes x {dataset.samples.count()} samples of "
                f"{dataset.value}, in {location}"
            )
        return dataset

    def show_illumina_run(self) -> SequencingRun:
        from foreman.run_archives import archive_of

        run = SequencingRun.objects.get(platform="illumina")
        self.say(
            f"\n14. Illumina run {run.run_id} ({run.instrument_type} {run.instrument_id}, "
            f"flow cell {run.flowcell}): {run.state}"
        )
        for change in run.history:
            self.say(f"   {change.at:%H:%M:%S} {change.new_state:<14} {change.reason}")
        archive = archive_of(run)
        if archive is not None:
            location = permanent_storage().location(archive.key)
            self.say(f"   archive: {location} ({archive.size:,} bytes, verified)")
            self.say(f"   restore: manage.py runs restore {run.run_id} /some/empty/folder")
        stats = list(run.demultiplex_stats.order_by("-reads"))
        if stats:
            fastqs = ComputedFile.objects.filter(
                processor_job=stats[0].processor_job, format="fastq.gz"
            ).count()
            self.say(f"   demultiplexed: {fastqs} FASTQ files; reads per sample (most first):")
            for row in stats[:5]:
                self.say(f"      {row.sample_id:<14} {row.index or '-':<10} {row.reads:>5} reads")
            if len(stats) > 5:
                self.say(f"      … and {len(stats) - 5} more (manage.py runs show {run.run_id})")
        return run

    def show_nanopore_run(self) -> list[ProcessorJob]:
        """The Nanopore run and its batches; returns the basecalling jobs that wait
        for Dorado (not a failure of the demo: most machines have no GPU)."""
        from runner.registry import pipeline_checks_here

        run = SequencingRun.objects.get(platform="nanopore")
        self.say(
            f"\n15. Nanopore run {run.run_id} ({run.flowcell} on {run.instrument_id}): {run.state}"
        )
        for batch in run.batches.order_by("variant"):
            files = batch.metadata.get("pod5_files") or {}
            reads = sum(entry.get("reads", 0) for entry in files.values())
            self.say(
                f"   batch {batch.variant}: {len(files)} pod5 file(s), {reads} reads, "
                + batch.status
            )
        waiting = list(
            ProcessorJob.objects.filter(pipeline="basecalling").exclude(state=JobState.SUCCEEDED)
        )
        why = pipeline_checks_here().get("basecalling", "")
        if waiting:
            self.say(
                f"   Basecalling waits: {len(waiting)} job(s) queued for a GPU worker with Dorado "
                f"or a basecalling engine ({why or 'none ran'}). Install Dorado and set "
                "REFINERY_DORADO, or run `manage.py basecall_engine` on a GPU server."
            )
        else:
            self.say("   Basecalled with Dorado (REFINERY_DORADO).")
        return waiting


def ask_for_dataset(study: str) -> Dataset:
    """What POST /api/datasets/ does with {"experiments": [study], "value": "tpm"},
    asked by a `demo` user (whose API token the summary prints)."""
    from django.contrib.auth import get_user_model

    from api.datasets import DatasetRequestSerializer, create_dataset

    user, _ = get_user_model().objects.get_or_create(username="demo")
    asked = DatasetRequestSerializer(data={"experiments": [study], "value": "tpm"})
    if not asked.is_valid():
        raise CommandError(f"the demo's dataset cannot be built: {asked.errors}")
    return create_dataset(asked.validated_data, user=user)
