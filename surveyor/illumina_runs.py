"""The `illumina_runs` source: the run folders Illumina instruments write to a
shared folder.

Every folder directly under a surveyed DIR that holds RunInfo.xml is a run. The
survey records each run it sees (`SequencingRun`), still sequencing or not, so
operators see it; once the instrument's completion marker is older than the
grace period (see surveyor/illumina_folders.py) the run moves to `complete`
and gets two batches that share one DownloaderJob (task `illumina_run`), as an
Ensembl species' two indices share their download:

- `archive` (pipeline `illumina_run_archive`): the folder, archived;
- `fastq` (pipeline `bcl2fastq`), only when the run has a SampleSheet.csv. A
  sample sheet that appears after the run was surveyed gives the `fastq` batch
  then, with a DownloaderJob of its own: the `illumina_run` downloader finds the
  archive already in temporary storage (or archives the folder again if it has
  left) and queues the batch's processor job, the same shape as any batch.

A run the instrument reports as failed (RunCompletionStatus.xml) moves to
`failed` with the instrument's status as the reason, and is archived only with
`--archive-failed`.

Nothing is created twice: runs and batches have unique natural keys, and two
surveys racing end with the one row the database let in. A folder that cannot
be used (RunInfo.xml malformed, unreadable, a link out of DIR, a run id that is
not the folder's name, RunParameters.xml huge or malformed) is refused with its
path and why, on the terminal and in the job's log, and the survey goes on; at
its end the survey job fails (without retry) listing what it refused, which is
where operators see it (`manage.py jobs list`, the admin, the notification).
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from common.models import Batch, DownloaderJob
from common.models.choices import DownloaderTask, ProcessorPipeline, SurveySource
from common.models.runs import Platform, RunState, SequencingRun
from runner.dispatch import send_job
from runner.pipeline import JobError
from surveyor.external_source import DiscoveredBatch, ExternalSourceSurveyor
from surveyor.illumina_files import FolderProblem, Unsettled, clean
from surveyor.illumina_folders import Progress, RunFolder, inspect_run_folder, run_folders

logger = logging.getLogger(__name__)

ARCHIVE, FASTQ = "archive", "fastq"
# The run states in which what the folder says may still move the run.
BEFORE_JOBS = (RunState.SEQUENCING, RunState.COMPLETE)


def shown(path: Path) -> str:
    """A path from the share, fit for a terminal and a failure reason (a folder's
    name may hold control characters: they show as '?')."""
    return clean(str(path), 1000)


@dataclass
class RunBatch(DiscoveredBatch):
    """A batch of one sequencing run (the row it belongs to)."""

    run: SequencingRun | None = None


class IlluminaRunsSurveyor(ExternalSourceSurveyor):
    source = SurveySource.ILLUMINA_RUNS
    help = (
        "Illumina run folders directly under each DIR: runs in progress are recorded, "
        "finished ones archived (and demultiplexed when they have a SampleSheet.csv)"
    )

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "dirs", nargs="+", metavar="DIR", help="a folder whose sub-folders are run folders"
        )
        parser.add_argument(
            "--archive-failed",
            action="store_true",
            help="archive runs the instrument reports as failed too (default: record them as "
            "failed, and leave them)",
        )

    @classmethod
    def parameters_from_options(cls, options: dict) -> dict:
        dirs = []
        for given in options["dirs"]:
            path = Path(given).expanduser()
            if not path.is_dir():
                raise JobError(f"{given} is not a folder: give the folder the instruments write to")
            dirs.append(str(path.resolve()))
        return {"dirs": dirs, "archive_failed": bool(options.get("archive_failed"))}

    # --- discovery ---------------------------------------------------------------------------

    def discover_batches(self) -> Iterable[DiscoveredBatch]:
        grace = float(settings.REFINERY_ILLUMINA_GRACE_S)
        now = time.time()
        batches: list[DiscoveredBatch] = []
        for root in map(Path, self.parameters.get("dirs", [])):
            try:
                candidates = run_folders(root)
            except OSError as error:
                self.refuse(shown(root), f"cannot be listed: {error.strerror or error}")
                continue
            for candidate in candidates:
                if candidate.problem:
                    self.refuse(shown(candidate.path), candidate.problem)
                    continue
                try:
                    folder = inspect_run_folder(candidate.path, root, grace, now)
                except Unsettled as problem:
                    print(
                        f"{shown(candidate.path)}: not yet: {problem}; looking again later",
                        flush=True,
                    )
                    continue
                except FolderProblem as problem:
                    self.refuse(shown(candidate.path), str(problem))
                    continue
                except OSError as error:  # the folder changed or vanished while read
                    self.refuse(shown(candidate.path), f"cannot be read: {error.strerror or error}")
                    continue
                run = self.record_run(folder)
                if run is not None:
                    batches.extend(self.run_batches(run, folder))
        return batches

    def record_run(self, folder: RunFolder) -> SequencingRun | None:
        """The run's row, created or brought up to date, and moved to the state the
        folder shows (complete, failed) when it is still before its jobs."""
        info = folder.run_info
        run, created = self.find_or_create_run(folder)
        if not created:
            problem = self.update_run(run, folder)
            if problem:
                self.refuse(shown(folder.path), problem)
                return None
        if folder.progress == Progress.COMPLETE:
            run.move_to(RunState.COMPLETE, folder.reason, job=self.job)
        elif folder.progress == Progress.FAILED and run.state in BEFORE_JOBS:
            run.move_to(RunState.FAILED, folder.reason, job=self.job)
        print(f"{info.run_id}: {run.state} ({folder.reason})", flush=True)
        return run

    def run_fields(self, folder: RunFolder) -> dict:
        info = folder.run_info
        instrument_type = folder.instrument.type or (
            folder.parameters.instrument_name if folder.parameters else ""
        )
        metadata = {"run_info_instrument": info.instrument}
        if folder.parameters is not None:
            metadata.update(folder.parameters.metadata)
        fields = {
            "flowcell": info.flowcell,
            "instrument_id": folder.instrument_id[:64],
            "instrument_type": instrument_type[:64],
            "run_number": info.run_number,
            "run_date": info.date,
            "location": str(folder.path),
            "read_structure": info.read_structure(),
            "lanes": info.lane_count,
            "tiles": list(info.tiles),
            "metadata": metadata,
        }
        if folder.sample_sheet is not None:
            fields["sample_sheet"] = folder.sample_sheet.text
            fields["sample_sheet_sha256"] = folder.sample_sheet.sha256
        return fields

    def find_or_create_run(self, folder: RunFolder) -> tuple[SequencingRun, bool]:
        """The run's row; a new one starts its history at `sequencing`, in the same
        transaction. Two surveys racing: the unique (platform, run_id) decides."""
        reason = f"found by survey job {self.job.pk}"
        return SequencingRun.find_or_create(
            Platform.ILLUMINA,
            folder.run_info.run_id,
            reason,
            self.job,
            state_reason=reason,
            **self.run_fields(folder),
        )

    def update_run(self, run: SequencingRun, folder: RunFolder) -> str:
        """Bring a known run's row up to date with its folder: a moved folder, a
        sample sheet that appeared. Returns a problem ("" when none)."""
        location = str(folder.path)
        changed = []
        if run.location != location:
            old = Path(run.location)
            if (old / "RunInfo.xml").is_file():
                return (
                    f"run {run.run_id} is also at {run.location} (recorded there first): "
                    "remove or rename one of the copies"
                )
            run.location = location
            changed.append("location")
        sheet = folder.sample_sheet
        if sheet is not None and run.sample_sheet_sha256 != sheet.sha256:
            has_fastq = Batch.objects.filter(sequencing_run=run, variant=FASTQ).exists()
            if has_fastq:
                print(
                    f"{run.run_id}: SampleSheet.csv changed since its fastq batch was made; "
                    "the recorded sample sheet stays",
                    flush=True,
                )
            else:
                run.sample_sheet, run.sample_sheet_sha256 = sheet.text, sheet.sha256
                changed += ["sample_sheet", "sample_sheet_sha256"]
        for name, value in self.run_fields(folder).items():  # fill what was not known
            if name not in ("location", "sample_sheet", "sample_sheet_sha256") and (
                getattr(run, name) in ("", None, [], {})
            ):
                setattr(run, name, value)
                changed.append(name)
        if changed:
            run.save(update_fields=[*changed, "updated_at"])
        return ""

    def run_batches(self, run: SequencingRun, folder: RunFolder) -> Iterator[RunBatch]:
        """The batches a finished run needs: archive, and fastq with a sample sheet."""
        archive_failed = self.parameters.get("archive_failed", False)
        if folder.progress == Progress.FAILED and not archive_failed:
            return
        if folder.progress not in (Progress.COMPLETE, Progress.FAILED):
            return
        metadata = {
            "run_id": run.run_id,
            "location": str(folder.path),
            "instrument_type": run.instrument_type,
            "flowcell": run.flowcell,
        }
        variants = [(ARCHIVE, ProcessorPipeline.ILLUMINA_RUN_ARCHIVE)]
        if folder.sample_sheet is not None and folder.progress == Progress.COMPLETE:
            variants.append((FASTQ, ProcessorPipeline.BCL2FASTQ))
        for variant, pipeline in variants:
            yield RunBatch(
                accession=run.run_id,
                variant=variant,
                files=[],  # the downloader records the archive and manifest it writes
                pipeline=pipeline,
                metadata=metadata,
                run=run,
            )

    # --- recording: one DownloaderJob per run ------------------------------------------------

    def group_batches(self, batches: list[DiscoveredBatch]) -> list[list[DiscoveredBatch]]:
        """A run's batches form one group (they list no files to group them by)."""
        groups: dict[str, list[DiscoveredBatch]] = {}
        for batch in batches:
            groups.setdefault(batch.accession, []).append(batch)
        return list(groups.values())

    def add_batch(self, discovered: DiscoveredBatch) -> tuple[Batch, bool]:
        batch, created = super().add_batch(discovered)
        run = getattr(discovered, "run", None)
        if created and run is not None:
            Batch.objects.filter(pk=batch.pk).update(sequencing_run=run)
            batch.sequencing_run = run
        return batch, created

    def queue_downloader_jobs(self, batches: list[Batch]) -> DownloaderJob | None:
        """One `illumina_run` DownloaderJob for a run's new batches (the registry of
        pipelines is not asked: every batch of this source is a run folder's)."""
        if not batches:
            return None
        job = DownloaderJob.objects.create(downloader_task=DownloaderTask.ILLUMINA_RUN)
        job.batches.set(batches)
        send_job(job)
        self.result.downloader_jobs.append(job)
        return job
