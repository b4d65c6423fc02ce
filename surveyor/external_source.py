"""The surveyor framework: discover batches in a source, record each once, and
queue one DownloaderJob per group of new batches that share files.

A source subclasses `ExternalSourceSurveyor`, names itself in `source`, adds its
command-line options in `add_arguments`, and implements `discover_batches`.

Sources are untrusted. Before anything is recorded, every discovered batch is
checked here, for every source: each file name must be one plain name
(`common.filenames`), and every text must fit its column. A batch that fails is
not recorded (nor any of its files), and says why in the survey's output and
log; the batches that pass are recorded and queued as usual; then the survey
fails, with `no_retry`, with a reason naming each refused file and where the
source listed it (`DiscoveredFile.listed_in`, e.g. a CHECKSUMS line). A source
may refuse things of its own with `refuse` (a species whose name would make a
path, say): they end the survey the same way.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction

from common.filenames import UnsafeName, check_name, control_character, shorten
from common.models import Batch, DownloaderJob, Organism, OriginalFile, SurveyJob
from common.models.choices import ProcessorPipeline
from common.models.lengths import length_problem
from common.progress import Progress
from common.secrets import strip_credentials
from runner.dispatch import send_job
from runner.pipeline import JobContext, JobError, run_pipeline
from runner.registry import downloader_task_for

logger = logging.getLogger(__name__)


@dataclass
class DiscoveredFile:
    url: str
    filename: str
    raw_format: str = ""
    expected_size: int | None = None
    expected_checksums: dict = field(default_factory=dict)
    # Where the source named the file, for messages: "<url of CHECKSUMS> line 3".
    listed_in: str = ""


@dataclass
class DiscoveredBatch:
    accession: str
    files: list[DiscoveredFile]
    variant: str = ""
    organism_name: str = ""
    taxonomy_id: int | None = None
    pipeline: str = ""
    metadata: dict = field(default_factory=dict)


@dataclass
class SurveyResult:
    discovered: int = 0
    new_batches: list[Batch] = field(default_factory=list)
    downloader_jobs: list[DownloaderJob] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # what was not recorded, and why


def file_problems(found: DiscoveredFile) -> list[str]:
    """Why a discovered file cannot be recorded (nothing when it can)."""
    where = found.listed_in or found.url
    problems = []
    try:
        check_name(found.filename)
    except UnsafeName as error:
        problems.append(f"{where}: {error}")
    for name, value in (("source_url", found.url), ("raw_format", found.raw_format)):
        if not isinstance(value, str):
            problems.append(f"{where}: the file's {name} is not text")
        elif problem := length_problem(OriginalFile, name, value):
            problems.append(f"{where}: {problem}")
    return problems


def batch_problems(batch: DiscoveredBatch) -> list[str]:
    """Why a discovered batch cannot be recorded (nothing when it can): its texts
    are shown in terminals and logs, so they hold no control character."""
    problems = []
    for model, name, value in (
        (Batch, "accession", batch.accession),
        (Batch, "variant", batch.variant),
        (Organism, "scientific_name", batch.organism_name),
    ):
        if not isinstance(value, str) or (name == "accession" and not value):
            problems.append(f"batch {shorten(batch.accession)}: its {name} is not a text")
        elif problem := length_problem(model, name, value):
            problems.append(f"batch {shorten(batch.accession)}: {problem}")
        elif (character := control_character(value)) is not None:
            problems.append(
                f"batch {shorten(batch.accession)}: its {name} holds the control character "
                f"{character!r}"
            )
    for found in batch.files:
        problems.extend(file_problems(found))
    return problems


class SurveyContext(JobContext, total=False):
    """A survey's job_context."""

    discovered: list[DiscoveredBatch]


class ExternalSourceSurveyor:
    """Surveys one source for one SurveyJob."""

    source: str = ""
    help: str = ""
    # The settings that hold the source's base URLs. A private mirror's may carry
    # user:password@: URLs are stored without it, and the downloader puts it back.
    base_url_settings: tuple[str, ...] = ()

    def __init__(self, survey_job: SurveyJob):
        self.job = survey_job
        self.parameters = survey_job.parameters or {}
        self.result = SurveyResult()

    # --- the command line ------------------------------------------------------------------

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add this source's options to `manage.py survey <source>`."""

    @classmethod
    def parameters_from_options(cls, options: dict) -> dict:
        """The SurveyJob parameters the command-line options ask for; raise
        JobError for options that do not make sense."""
        return {}

    # --- what a source implements ----------------------------------------------------------------

    def discover_batches(self) -> Iterable[DiscoveredBatch]:
        raise NotImplementedError

    def determine_pipeline(self, batch: DiscoveredBatch) -> str:
        """The processor pipeline a batch needs; sources that discover one kind of
        data set it on each batch."""
        if not batch.pipeline:
            raise JobError(f"{self.source}: no pipeline known for batch {batch.accession}")
        return ProcessorPipeline(batch.pipeline)

    def group_batches(self, batches: list[DiscoveredBatch]) -> list[list[DiscoveredBatch]]:
        """Batches that share any file go in one group, downloaded by one job."""
        groups: list[list[DiscoveredBatch]] = []
        group_of_url: dict[str, int] = {}
        for batch in batches:
            hits = sorted({group_of_url[f.url] for f in batch.files if f.url in group_of_url})
            if not hits:
                groups.append([batch])
                target = len(groups) - 1
            else:
                target = hits[0]
                groups[target].append(batch)
                for other in reversed(hits[1:]):  # this batch joins groups together
                    for moved in groups[other]:
                        groups[target].append(moved)
                        for f in moved.files:
                            group_of_url[f.url] = target
                    groups[other] = []
            for f in batch.files:
                group_of_url[f.url] = target
        return [g for g in groups if g]

    # --- the survey ------------------------------------------------------------------------------

    def survey(self) -> SurveyContext:
        """Discover, record and queue, as the survey job's pipeline (the runtime
        started the job; the pipeline records its outcome)."""
        return run_pipeline(
            self.job,
            [self.discover, self.record_batches, self.report],
        )

    def discover(self, context: SurveyContext) -> SurveyContext:
        """Every batch the source offers, with the pipeline each needs."""
        discovered = list(self.discover_batches())
        for batch in discovered:
            batch.pipeline = self.determine_pipeline(batch)
            for found in batch.files:  # a mirror's password stays in its setting
                found.url = strip_credentials(found.url)
                found.listed_in = strip_credentials(found.listed_in)
        self.result.discovered = len(discovered)
        context["discovered"] = discovered
        return context

    def record_batches(self, context: SurveyContext) -> SurveyContext:
        """Each group of batches that share files, recorded in its own transaction;
        then the survey fails if anything was refused (see the module docstring)."""
        safe, refused = [], {}
        for batch in context["discovered"]:
            problems = batch_problems(batch)
            if problems:
                label = f"{batch.accession} [{batch.variant}]" if batch.variant else batch.accession
                refused.setdefault("; ".join(problems), []).append(shorten(label))
            else:
                safe.append(batch)
        for why, labels in refused.items():  # batches that share a bad file: said once
            self.refuse(f"batch{'es' if len(labels) > 1 else ''} {', '.join(labels)}", why)
        groups = self.group_batches(safe)
        with Progress(len(groups), f"recording {self.source} batches") as progress:
            for group in groups:
                self.record_group(group)
                progress.advance()
        return context

    def report(self, context: SurveyContext) -> SurveyContext:
        """What the survey found, in its log (and on the terminal of a foreground
        survey); then the survey fails if the source sent what it refused."""
        result = self.result
        print(
            f"survey job {self.job.pk}: {result.discovered} batch(es) found, "
            f"{len(result.new_batches)} new, {len(result.downloader_jobs)} downloader job(s) "
            "queued",
            flush=True,
        )
        self.fail_if_refused()
        return context

    def refuse(self, what: str, why: str) -> None:
        """Leave `what` unrecorded because of `why` (shown now, and in the
        survey's failure reason at its end)."""
        logger.warning("%s: refused %s: %s", self.source, what, why)
        print(f"refused {what}: {why}", flush=True)
        self.result.refused.append(f"{what}: {why}")

    def fail_if_refused(self) -> None:
        refused = self.result.refused
        if not refused:
            return
        shown = "; ".join(refused[:5]) + (
            f"; and {len(refused) - 5} more" if len(refused) > 5 else ""
        )
        raise JobError(
            f"{self.source} sent what the refinery does not accept, and it refused it (what "
            f"it accepted was recorded: {len(self.result.new_batches)} new batch(es)): {shown}",
            no_retry=True,
        )

    @transaction.atomic
    def record_group(self, group: list[DiscoveredBatch]) -> DownloaderJob | None:
        """Record a group's batches and, for those that are new, one
        DownloaderJob, in one transaction; the job is sent after it commits."""
        new = [batch for batch, created in (self.add_batch(d) for d in group) if created]
        self.result.new_batches.extend(new)
        return self.queue_downloader_jobs(new)

    def add_batch(self, discovered: DiscoveredBatch) -> tuple[Batch, bool]:
        """The batch for `discovered`, created unless its natural key (source,
        accession, variant) exists. Two surveys racing both end with the one row:
        the database's unique constraint decides who created it."""
        existing = Batch.objects.filter(
            source=self.source, accession=discovered.accession, variant=discovered.variant
        ).first()
        if existing:
            return existing, False
        organism = None
        if discovered.organism_name:
            organism = Organism.get_or_create_by_name(
                discovered.organism_name, discovered.taxonomy_id
            )
        try:
            with transaction.atomic():
                batch = Batch.objects.create(
                    source=self.source,
                    accession=discovered.accession,
                    variant=discovered.variant,
                    organism=organism,
                    pipeline_required=discovered.pipeline,
                    metadata=discovered.metadata,
                    survey_job=self.job,
                )
        except IntegrityError:
            return (
                Batch.objects.get(
                    source=self.source, accession=discovered.accession, variant=discovered.variant
                ),
                False,
            )
        for found in discovered.files:
            batch.original_files.add(self.add_file(found))
        return batch, True

    @staticmethod
    def add_file(found: DiscoveredFile) -> OriginalFile:
        """The file at `found.url`, shared by every batch that needs it. Its name
        and texts are checked here too (record_batches refuses such batches before)."""
        found.url = strip_credentials(found.url)
        problems = file_problems(found)
        if problems:
            raise JobError("; ".join(problems), no_retry=True)
        defaults = {
            "filename": found.filename,
            "raw_format": found.raw_format,
            "expected_size": found.expected_size,
            "expected_checksums": found.expected_checksums,
        }
        try:
            with transaction.atomic():
                return OriginalFile.objects.get_or_create(source_url=found.url, defaults=defaults)[
                    0
                ]
        except IntegrityError:
            return OriginalFile.objects.get(source_url=found.url)

    def queue_downloader_jobs(self, batches: list[Batch]) -> DownloaderJob | None:
        """One DownloaderJob for new batches that share their files."""
        if not batches:
            return None
        tasks = {downloader_task_for(b.pipeline_required) for b in batches}
        if len(tasks) != 1:
            raise JobError(f"batches {batches} need different downloaders: {sorted(tasks)}")
        job = DownloaderJob.objects.create(downloader_task=tasks.pop())
        job.batches.set(batches)
        send_job(job)
        self.result.downloader_jobs.append(job)
        return job
