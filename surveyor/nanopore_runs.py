"""The `nanopore_runs` source: MinKNOW run folders on a mounted file system.

`manage.py survey nanopore_runs DIR [DIR …]` reads each folder
(`surveyor.nanopore_scan.scan_nanopore_root`) and, for each run:

- records it as a `SequencingRun` (platform nanopore): the protocol run id is
  its run id, the device its instrument, with the flow cell, sample, kit and
  start time its files give (final summary, else report, else the pod5 files'
  run info). It is `sequencing` until `final_summary_*.txt` appears, then
  `complete`;
- remembers every pod5 file it saw with its size (`surveyor.models.Pod5File`).
  A file is complete when it ends with the pod5 signature and its size has not
  changed since the previous survey (or, once the run is complete, at once:
  MinKNOW writes the final summary after every file). Complete files not yet in
  a batch are grouped into batches of `REFINERY_POD5_BATCH_FILES`; the last,
  partial batch is closed when the run completes;
- each batch (accession: the run id, variant: its number, pipeline
  `basecalling`) gets its own `pod5_batch` DownloaderJob.

A file joins a batch by an UPDATE of its row "where it has no batch yet", under
a lock on the run's row, and (run, path) is unique: two surveys at once never
record a file twice or put it in two batches. What the folder holds that the
survey must not read is said (path and why) and left out; the rest goes on.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterable
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from common.models import Batch, Platform, RunState, SequencingRun
from common.models.choices import ProcessorPipeline, SurveySource
from common.models.runs import basecalling_finished
from runner.pipeline import JobError
from surveyor.external_source import DiscoveredBatch, DiscoveredFile, ExternalSourceSurveyor
from surveyor.models import Pod5File
from surveyor.nanopore_scan import RunFolder, scan_nanopore_root

logger = logging.getLogger(__name__)


def batch_size() -> int:
    size = settings.REFINERY_POD5_BATCH_FILES
    if not isinstance(size, int) or size < 1:
        raise JobError(
            f"REFINERY_POD5_BATCH_FILES must be a whole number of at least 1, not {size!r}",
            no_retry=True,
        )
    return size


def kit_of(run: RunFolder) -> str:
    """The sequencing kit: the protocol's last part (…:FLO-MIN114:SQK-LSK114), the
    report's tag, or the pod5 run info."""
    protocol = (run.final_summary or {}).get("protocol", "")
    if protocol.count(":") >= 2:
        return protocol.rsplit(":", 1)[-1].strip()
    kit = run.says("", ("protocol_run_info", "meta_info", "tags", "kit", "string_value"), "")
    return kit or run.pod5_run_info.get("sequencing_kit", "").upper()


def start_of(run: RunFolder) -> datetime:
    text = run.says("started", ("protocol_run_info", "start_time"), "protocol_start_time")
    try:
        started = datetime.fromisoformat(text) if text else run.started
    except ValueError:
        return run.started
    return started if started.tzinfo else timezone.make_aware(started, timezone.utc)


def run_fields(run: RunFolder) -> dict:
    """The SequencingRun's fields from what the run's files say."""
    metadata = {
        "sample": run.says(
            "sample_id", ("protocol_run_info", "user_info", "sample_id"), "sample_id"
        )
        or run.sample,
        "protocol_group": run.says(
            "protocol_group_id",
            ("protocol_run_info", "user_info", "protocol_group_id"),
            "experiment_name",
        )
        or run.group,
        "kit": kit_of(run),
        "protocol": run.says("protocol", ("protocol_run_info", "protocol_id"), "protocol_name"),
        "flow_cell_product_code": run.says(
            "", ("protocol_run_info", "flow_cell", "product_code"), "flow_cell_product_code"
        ),
        "acquisition_run_id": run.says("acquisition_run_id", (), "acquisition_id"),
        "folder_run_id": run.short_id,
        "complete": run.complete,
    }
    if run.final_summary is not None:
        summary = run.final_summary
        metadata["final_summary"] = run.final_summary_name
        metadata["instrument"] = summary.get("instrument", "")
        for key in ("acquisition_stopped", "processing_stopped", "pod5_files_in_final_dest"):
            if key in summary:
                metadata[key] = summary[key]
    fields = {
        "flowcell": run.says(
            "flow_cell_id", ("protocol_run_info", "flow_cell", "flow_cell_id"), "flow_cell_id"
        )
        or run.flowcell,
        "instrument_id": run.device,
        "instrument_type": run.says(
            "", ("protocol_run_info", "device", "device_type"), "sequencer_position_type"
        ),
        "run_date": start_of(run),
        "location": str(run.path),
        "metadata": {k: v for k, v in metadata.items() if v not in ("", None)},
    }
    for name in ("flowcell", "instrument_id", "instrument_type"):  # columns of 64
        fields[name] = fields[name][: SequencingRun._meta.get_field(name).max_length]
    return fields


class NanoporeRunsSurveyor(ExternalSourceSurveyor):
    source = SurveySource.NANOPORE_RUNS
    help = (
        "MinKNOW run folders (<group>/<sample>/<start>_<device>_<flow cell>_<run id>/): each run "
        "recorded, its complete pod5 files batched for basecalling"
    )

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "paths",
            nargs="+",
            metavar="DIR",
            help="a folder holding MinKNOW output (protocol group folders), or one run folder",
        )

    @classmethod
    def parameters_from_options(cls, options: dict) -> dict:
        from pathlib import Path

        paths = []
        for given in options["paths"]:
            path = Path(given).expanduser().resolve()
            if not path.is_dir():
                raise JobError(f"{given} is not a folder", no_retry=True)
            paths.append(str(path))
        return {"paths": paths}

    # --- discovering ----------------------------------------------------------------------------

    def discover_batches(self) -> Iterable[DiscoveredBatch]:
        self.runs_seen: list[SequencingRun] = []
        for root in self.parameters.get("paths", []):
            scan = scan_nanopore_root(root)
            for skipped in scan.skipped:
                self.skip(skipped.path, skipped.why)
            for found in scan.runs:
                yield from self.discover_run(found)

    def discover_run(self, found: RunFolder) -> Iterable[DiscoveredBatch]:
        """Record the run and its pod5 files as seen now; the batches its complete,
        unbatched files make."""
        if not found.protocol_run_id:
            print(
                f"waiting: {found.path}: no protocol run id yet (no final summary, report or "
                "complete pod5 file); the next survey looks again",
                flush=True,
            )
            return
        run = self.record_run(found)
        if run is None:
            return
        self.runs_seen.append(run)
        complete = self.complete_files(run, found)
        self.compare_with_summary(found)
        size = batch_size()
        chunks = [complete[i : i + size] for i in range(0, len(complete), size)]
        if chunks and len(chunks[-1]) < size and not found.complete:
            chunks.pop()  # a partial batch waits for more files, or for the run's end
        for chunk in chunks:
            yield DiscoveredBatch(
                accession=run.run_id,
                pipeline=ProcessorPipeline.BASECALLING,
                files=[
                    DiscoveredFile(
                        url=seen.path.as_uri(),
                        filename=seen.path.name,
                        raw_format="pod5",
                        expected_size=seen.size,
                        listed_in=f"the run folder {found.path}",
                    )
                    for _row, seen in chunk
                ],
                metadata={
                    "sequencing_run": run.pk,
                    "pod5_file_ids": [row.pk for row, _seen in chunk],
                    "pod5_paths": [seen.relative for _row, seen in chunk],
                },
            )

    def record_run(self, found: RunFolder) -> SequencingRun | None:
        """The run's row, created (with its first history entry) or brought up to
        date; `complete` once its final summary is there. None for a copy of a run
        recorded from another folder (its files are that folder's)."""
        fields = run_fields(found)
        run, created = SequencingRun.find_or_create(
            Platform.NANOPORE,
            found.protocol_run_id,
            f"found in {found.path} by survey job {self.job.pk}",
            self.job,
            **fields,
        )
        if created:
            print(f"new run {run.run_id} in {found.path}", flush=True)
        if run.location != fields["location"]:
            self.skip(
                str(found.path),
                f"run {run.run_id} was found in {run.location} before: this copy is left out",
            )
            return None
        metadata = {**run.metadata, **fields.pop("metadata")}
        for name, value in fields.items():
            setattr(run, name, value)
        run.metadata = metadata
        run.save()
        if found.complete:
            run.move_to(RunState.COMPLETE, f"{found.final_summary_name} appeared", job=self.job)
        return run

    def complete_files(self, run: SequencingRun, found: RunFolder) -> list[tuple]:
        """(row, seen) for each pod5 file that is complete now and in no batch yet;
        every file's size and signature are remembered for the next look."""
        now = timezone.now()
        known = {row.path: row for row in Pod5File.objects.filter(run=run)}
        new = [
            Pod5File(
                run=run,
                path=seen.relative,
                size=seen.size,
                end_signature=seen.end_signature,
                first_seen_at=now,
                last_seen_at=now,
            )
            for seen in found.pod5
            if seen.relative not in known
        ]
        # Another survey may insert the same rows meanwhile: the constraint keeps one.
        Pod5File.objects.bulk_create(new, ignore_conflicts=True)
        rows = {row.path: row for row in Pod5File.objects.filter(run=run)}
        complete = []
        for seen in found.pod5:
            row = rows.get(seen.relative)
            if row is None:
                continue
            before = known.get(seen.relative)
            steady = before is not None and before.size == seen.size
            if before is not None and (before.size, before.end_signature) != (
                seen.size,
                seen.end_signature,
            ):
                Pod5File.objects.filter(pk=row.pk).update(
                    size=seen.size, end_signature=seen.end_signature, last_seen_at=now
                )
            if row.batch_id is not None:
                continue
            signed = seen.start_signature and seen.end_signature
            if signed and (steady or found.complete):
                complete.append((row, seen))
            elif found.complete and not signed:
                self.skip(
                    str(seen.path),
                    "the run is complete but this pod5 file lacks its "
                    f"{'start' if not seen.start_signature else 'end'} signature "
                    "(truncated or damaged): not batched",
                )
        return complete

    def compare_with_summary(self, found: RunFolder) -> None:
        """Say so when the final summary counts more or fewer pod5 files than the
        folder holds (files moved away, or left out as unreadable)."""
        said = (found.final_summary or {}).get("pod5_files_in_final_dest", "")
        if not said.isdigit() or int(said) == len(found.pod5):
            return
        message = (
            f"{found.path}: {found.final_summary_name} counts {said} pod5 file(s) in "
            f"pod5_files_in_final_dest; the survey found {len(found.pod5)}"
        )
        logger.warning("nanopore_runs: %s", message)
        print(f"note: {message}", flush=True)

    # --- recording --------------------------------------------------------------------------------

    def add_batch(self, discovered: DiscoveredBatch) -> tuple[Batch | None, bool]:
        """The next batch of the run, made of the discovered files if none of them
        is in a batch yet (another survey may have batched them meanwhile: then
        nothing). Runs inside `record_group`'s transaction."""
        run = SequencingRun.objects.select_for_update().get(
            pk=discovered.metadata["sequencing_run"]
        )
        ids = discovered.metadata["pod5_file_ids"]
        free = Pod5File.objects.filter(pk__in=ids, batch__isnull=True).count()
        if free != len(ids):
            return None, False
        number = Batch.objects.filter(sequencing_run=run).count() + 1
        batch = Batch.objects.create(
            source=self.source,
            accession=run.run_id,
            variant=str(number),
            pipeline_required=discovered.pipeline,
            metadata={
                "pod5_paths": discovered.metadata["pod5_paths"],
                "run_folder": run.location,
            },
            sequencing_run=run,
            survey_job=self.job,
        )
        claimed = Pod5File.objects.filter(pk__in=ids, batch__isnull=True).update(batch=batch)
        if claimed != len(ids):  # cannot happen under the run's lock; never half a batch
            raise IntegrityError(f"pod5 files of batch {batch} were batched meanwhile")
        for found in discovered.files:
            batch.original_files.add(self.add_file(found))
        print(f"batch {number} of run {run.run_id}: {len(ids)} pod5 file(s)", flush=True)
        return batch, True

    def group_batches(self, batches: list[DiscoveredBatch]) -> list[list[DiscoveredBatch]]:
        """Each batch is downloaded by its own job."""
        return [[batch] for batch in batches]

    def report(self, context):
        """Runs that are complete with every batch basecalled are `basecalled`
        (their last batch may have been done before the final summary appeared)."""
        for run in getattr(self, "runs_seen", []):
            with transaction.atomic():
                locked = SequencingRun.objects.select_for_update().get(pk=run.pk)
                if basecalling_finished(locked):
                    locked.move_to(
                        RunState.BASECALLED,
                        "the run is complete and every batch is basecalled",
                        job=self.job,
                    )
        return super().report(context)

    def skip(self, path: str, why: str) -> None:
        """Leave out what the folder holds but the survey must not read, saying so."""
        logger.warning("nanopore_runs: skipped %s: %s", path, why)
        print(f"skipped {path}: {why}", flush=True)
