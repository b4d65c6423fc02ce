"""What `manage.py runs` says about sequencing runs, as plain data, and how a
run's verified archive is restored into a folder."""

from __future__ import annotations

import contextlib
from pathlib import Path

from django.db.models import Q, QuerySet

from common.models import ComputedFile, DownloaderJob, ProcessorJob, SequencingRun
from common.progress import Progress
from common.run_archive import ArchiveError, ReadResult, load_manifest, restore_archive
from common.storage import StorageError, permanent_storage
from foreman.cli_tables import clip, table, when
from foreman.job_summaries import what
from foreman.jobrefs import job_ref
from foreman.run_archives import archive_of


class RunError(Exception):
    """A run cannot be found or restored; the message says what to do."""


def find_run(run_id: str) -> SequencingRun:
    run = SequencingRun.objects.filter(run_id=run_id).first()
    if run is None:
        raise RunError(f"there is no run {run_id!r}: see `manage.py runs list`")
    return run


def select_runs(
    states: list[str] | None = None, instrument: str = "", since=None
) -> QuerySet[SequencingRun]:
    """Runs newest first; `instrument` matches the instrument's id or type,
    `since` the run's date (or when it was found, for a run without one)."""
    runs = SequencingRun.objects.all()
    if states:
        runs = runs.filter(state__in=states)
    if instrument:
        runs = runs.filter(
            Q(instrument_id__iexact=instrument) | Q(instrument_type__iexact=instrument)
        )
    if since is not None:
        runs = runs.filter(Q(run_date__gte=since) | Q(run_date__isnull=True, created_at__gte=since))
    return runs.order_by("-run_date", "-created_at", "-id")


def run_summary(run: SequencingRun) -> dict:
    return {
        "run_id": run.run_id,
        "platform": run.platform,
        "state": run.state,
        "state_reason": run.state_reason,
        "state_changed_at": run.state_changed_at,
        "instrument_id": run.instrument_id,
        "instrument_type": run.instrument_type,
        "flowcell": run.flowcell,
        "run_number": run.run_number,
        "run_date": run.run_date,
        "location": run.location,
        "created_at": run.created_at,
    }


def run_jobs(run: SequencingRun) -> list:
    jobs = []
    for model in (DownloaderJob, ProcessorJob):
        jobs += list(model.objects.filter(batches__sequencing_run=run).distinct())
    return sorted(jobs, key=lambda j: (j.created_at, j.kind, j.pk))


def run_detail(run: SequencingRun) -> dict:
    """Everything `runs show` prints: the run, its history, batches, jobs, results."""
    results = ComputedFile.objects.filter(batches__sequencing_run=run).distinct().order_by("id")
    return {
        **run_summary(run),
        "read_structure": run.read_structure,
        "lanes": run.lanes,
        "tiles": len(run.tiles or []),
        "sample_sheet": bool(run.sample_sheet),
        "history": [
            {
                "at": change.at,
                "old_state": change.old_state,
                "new_state": change.new_state,
                "reason": change.reason,
                "job": f"{change.job_kind}:{change.job_id}" if change.job_id else "",
            }
            for change in run.history
        ],
        "batches": [
            {"id": b.pk, "variant": b.variant, "pipeline": b.pipeline_required, "status": b.status}
            for b in run.batches.order_by("id")
        ],
        "jobs": [
            {
                "job": job_ref(j),
                "state": j.state,
                "what": what(j),
                "attempt": j.num_retries + 1,
                "start_time": j.start_time,
                "end_time": j.end_time,
                "failure_reason": j.failure_reason,
            }
            for j in run_jobs(run)
        ],
        "results": [
            {
                "filename": f.filename,
                "format": f.format,
                "size": f.size,
                "sha256": f.sha256,
                "key": f.key,
                "job": f"processor:{f.processor_job_id}",
            }
            for f in results
        ],
    }


LIST_HEADERS = ["RUN", "STATE", "SINCE", "INSTRUMENT", "FLOWCELL", "RUN DATE", "REASON"]


def list_row(run: SequencingRun) -> list:
    instrument = " ".join(x for x in (run.instrument_type, run.instrument_id) if x)
    return [
        run.run_id,
        run.state,
        when(run.state_changed_at),
        instrument,
        run.flowcell,
        when(run.run_date)[:10] if run.run_date else "-",
        clip(run.state_reason, 60),
    ]


def render_detail(detail: dict) -> str:
    """`runs show` on a terminal."""
    fields = [
        ("run", detail["run_id"]),
        ("state", f"{detail['state']} since {when(detail['state_changed_at'])}"),
        ("reason", detail["state_reason"] or "-"),
        ("instrument", f"{detail['instrument_type'] or '-'} {detail['instrument_id']}".strip()),
        ("flow cell", detail["flowcell"] or "-"),
        ("run date", when(detail["run_date"])),
        ("folder", detail["location"]),
        ("reads", ", ".join(read_text(r) for r in detail["read_structure"] or []) or "-"),
        ("lanes / tiles", f"{detail['lanes'] or '-'} / {detail['tiles']}"),
        ("sample sheet", "yes" if detail["sample_sheet"] else "no"),
    ]
    width = max(len(name) for name, _ in fields)
    lines = [f"{name:<{width}}  {value}" for name, value in fields]
    sections = [
        ("history", ["AT", "FROM", "TO", "JOB", "REASON"],
         [[when(h["at"]), h["old_state"] or "(new)", h["new_state"], h["job"],
           clip(h["reason"], 70)] for h in detail["history"]]),
        ("batches", ["BATCH", "VARIANT", "PIPELINE", "STATUS"],
         [[b["id"], b["variant"], b["pipeline"], b["status"]] for b in detail["batches"]]),
        ("jobs", ["JOB", "STATE", "WHAT", "TRY", "STARTED", "ENDED", "REASON"],
         [[j["job"], j["state"], j["what"], j["attempt"], when(j["start_time"]),
           when(j["end_time"]), clip(j["failure_reason"], 50)] for j in detail["jobs"]]),
        ("results", ["FILE", "FORMAT", "BYTES", "SHA-256", "JOB"],
         [[r["filename"], r["format"], r["size"], r["sha256"][:16] + "…", r["job"]]
          for r in detail["results"]]),
    ]  # fmt: skip
    for title, headers, rows in sections:
        lines += ["", f"{title}:", table(headers, rows) if rows else "  (none)"]
    return "\n".join(lines)


def read_text(read: dict) -> str:
    kind = "index" if read.get("is_index") else "read"
    return f"{kind} {read.get('number', '?')} ({read.get('cycles', '?')} cycles)"


# --- restoring ------------------------------------------------------------------------------


def archive_files(run: SequencingRun) -> tuple[ComputedFile, ComputedFile]:
    """The run's newest verified archive and its manifest."""
    archive = archive_of(run)
    if archive is None:
        raise RunError(
            f"run {run.run_id} is {run.state} and has no verified archive yet: see "
            f"`manage.py runs show {run.run_id}`"
        )
    manifest = archive.processor_job.computed_files.filter(format="json").order_by("-id").first()
    if manifest is None:
        raise RunError(f"run {run.run_id}: the archive {archive.filename} has no manifest")
    return archive, manifest


def restore_run(run: SequencingRun, dest: str | Path, progress: bool = True) -> ReadResult:
    """Unpack the run's archive from permanent storage into `dest` (new or empty)
    and check every member against the manifest; a progress bar on a terminal."""
    archive, manifest_file = archive_files(run)
    storage = permanent_storage()
    try:
        with contextlib.closing(storage.open(manifest_file.key)) as stream:
            manifest = load_manifest(stream, manifest_file.filename)
        total = manifest.get("totals", {}).get("bytes")
        with (
            Progress(total if progress else None, f"restoring {run.run_id}") as bar,
            contextlib.closing(storage.open(archive.key)) as stream,
        ):
            return restore_archive(stream, manifest, dest, lambda n, _p: bar.advance(n))
    except ArchiveError as error:
        raise RunError(f"run {run.run_id}: {error.reason}") from None
    except StorageError as error:
        raise RunError(f"run {run.run_id}: cannot read its archive: {error}") from None
