"""What a survey decides of an Illumina run folder from its files
(illumina_files.py reads them): which folders under a DIR are runs, whether a
run is still being sequenced, and, once it is not, whether the instrument says
it succeeded.

Completion depends on the instrument (see the table in README.md, "Illumina
runs"): NovaSeq 6000, NovaSeq X, iSeq and NextSeq 1000/2000 write
`CopyComplete.txt` once the run has been copied to its output folder (after
`RTAComplete.txt`); the others write only `RTAComplete.txt` (NextSeq 500/550:
`.txt` or `.xml`). Newer instruments also write `RunCompletionStatus.xml`, which
tells a run that completed from one that was stopped or failed.

A marker counts once it is older than a grace period measured by its **ctime**:
a copy to NFS keeps the source's mtime, so an mtime may say "an hour old" of a
file that arrived a second ago; the ctime is when this file system got it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from common.illumina.run_info import RunInfo, RunInfoError, read_run_info
from surveyor.illumina_files import (
    COMPLETION_STATUS_NAME,
    COPY_COMPLETE,
    RTA_COMPLETE,
    RUN_PARAMETERS_NAMES,
    SAMPLE_SHEET_NAME,
    UNKNOWN,
    CompletionStatus,
    FolderProblem,
    Instrument,
    Marker,
    RunParameters,
    SampleSheet,
    Unsettled,
    clean,
    completion_marker,
    ctime_of,
    describe_age,
    instrument_from_id,
    instrument_from_name,
    read_completion_status,
    read_run_parameters,
    read_sample_sheet,
    settling,
)

# --- one folder ---------------------------------------------------------------------------------


class Progress:
    SEQUENCING = "sequencing"  # no marker yet
    WAITING = "waiting"  # marker there, younger than the grace period
    COMPLETE = "complete"
    FAILED = "failed"


@dataclass(frozen=True)
class RunFolder:
    """What a survey learns from one run folder."""

    path: Path
    run_info: RunInfo
    instrument_id: str
    instrument: Instrument
    parameters: RunParameters | None
    sample_sheet: SampleSheet | None
    progress: str
    reason: str  # why the folder is in that state, for the run's history
    ready_at: float | None = None  # WAITING: when the marker will be old enough (epoch s)


def inspect_run_folder(path: Path, root: Path, grace_s: float, now: float) -> RunFolder:
    """Read a run folder (one holding RunInfo.xml, directly under `root`) and say
    where its run is. FolderProblem when it cannot be used (the message names the file)."""
    if problem := links_outside(path, root):
        raise FolderProblem(problem)
    try:
        run_info = read_run_info(path / "RunInfo.xml")
    except RunInfoError as error:
        raise settling(path / "RunInfo.xml", str(error), grace_s, now) from None
    if run_info.run_id != path.name:
        raise FolderProblem(
            f"RunInfo.xml says the run is {run_info.run_id!r} but the folder is named "
            f"{clean(path.name)!r}: a run folder is named after its run (was it renamed, or "
            "RunInfo.xml copied from another run?)"
        )
    try:
        parameters = read_run_parameters(path)
    except FolderProblem as error:
        name = next((n for n in RUN_PARAMETERS_NAMES if (path / n).is_file()), "")
        raise settling(path / name, str(error), grace_s, now) from None
    instrument_id = (parameters.instrument_id if parameters else "") or run_info.instrument
    instrument = instrument_from_id(instrument_id)
    if instrument is UNKNOWN and parameters is not None:
        instrument = instrument_from_name(parameters.instrument_name)
    # A file is used once it has settled: one younger than the grace period may
    # still be being written (an empty or half XML file, half a sample sheet).
    sample_sheet = read_sample_sheet(path)
    if sample_sheet is not None and now - sample_sheet.ctime < grace_s:
        sheet_ready_at, sample_sheet = sample_sheet.ctime + grace_s, None
    else:
        sheet_ready_at = None
    try:
        status = read_completion_status(path)
    except FolderProblem:
        written = ctime_of(path / COMPLETION_STATUS_NAME)
        if now - written >= grace_s:
            raise
        return RunFolder(
            path, run_info, instrument_id, instrument, parameters, sample_sheet,
            Progress.WAITING, f"{COMPLETION_STATUS_NAME} is being written", written + grace_s,
        )  # fmt: skip
    marker = completion_marker(path, instrument)
    progress, reason, ready_at = judge(instrument, marker, status, grace_s, now)
    if sheet_ready_at is not None:
        ready_at = min(ready_at or sheet_ready_at, sheet_ready_at)
    return RunFolder(
        path, run_info, instrument_id, instrument, parameters, sample_sheet, progress, reason,
        ready_at,
    )  # fmt: skip


def judge(
    instrument: Instrument,
    marker: Marker | None,
    status: CompletionStatus | None,
    grace_s: float,
    now: float,
) -> tuple[str, str, float | None]:
    """(progress, reason, ready_at) from the markers present."""
    if status is not None and not status.succeeded:
        age = now - status.ctime
        if age < grace_s:
            return (
                Progress.WAITING,
                f"{COMPLETION_STATUS_NAME} ({status.status}) is {describe_age(age)} old",
                status.ctime + grace_s,
            )
        return (
            Progress.FAILED,
            f"the instrument reports {status.status} in {COMPLETION_STATUS_NAME} "
            f"({describe_age(age)} old)",
            None,
        )
    if marker is None:
        wanted = COPY_COMPLETE if instrument.writes_copy_complete else " or ".join(RTA_COMPLETE)
        return Progress.SEQUENCING, f"no {wanted} yet", None
    age = now - marker.ctime
    if age < grace_s:
        return (
            Progress.WAITING,
            f"{marker.name} is {describe_age(age)} old, "
            f"the grace period is {describe_age(grace_s)}",
            marker.ctime + grace_s,
        )
    said = f"; {COMPLETION_STATUS_NAME} says {status.status}" if status else ""
    return Progress.COMPLETE, f"{marker.name} is {describe_age(age)} old{said}", None


# --- a folder of run folders --------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """An entry of a watched folder: a run folder, or a problem with one."""

    path: Path
    problem: str = ""


IGNORED_NAMES = frozenset({"lost+found"})


def run_folders(root: Path) -> list[Candidate]:
    """The run folders (those holding RunInfo.xml) directly under `root`, and the
    entries that cannot be looked into (unreadable, or a link leading out of `root`).
    OSError when `root` itself cannot be listed."""
    root = root.resolve()
    found = []
    with os.scandir(root) as entries:
        names = sorted(entry.name for entry in entries)
    for name in names:
        if name.startswith(".") or name in IGNORED_NAMES:
            continue
        path = root / name
        try:
            if not path.is_dir():
                continue
            real = path.resolve()
            if not real.is_relative_to(root) or real == root:
                found.append(Candidate(path, f"a link to {clean(str(real))}, outside {root}"))
                continue
            with os.scandir(path) as inside:
                holds = {entry.name for entry in inside}
        except PermissionError as error:
            found.append(Candidate(path, f"cannot be read: {error.strerror or error}"))
            continue
        except OSError as error:
            found.append(Candidate(path, f"cannot be read: {error.strerror or error}"))
            continue
        if "RunInfo.xml" not in holds:
            continue
        info = path / "RunInfo.xml"
        if not info.resolve().is_relative_to(root):
            found.append(Candidate(path, f"RunInfo.xml is a link leading outside {root}"))
            continue
        found.append(Candidate(path))
    return found


def links_outside(folder: Path, root: Path) -> str:
    """A problem when a file the survey reads in `folder` is a link out of `root`."""
    for name in (
        *RUN_PARAMETERS_NAMES,
        SAMPLE_SHEET_NAME,
        COMPLETION_STATUS_NAME,
        COPY_COMPLETE,
        *RTA_COMPLETE,
    ):
        path = folder / name
        if path.is_symlink() and not path.resolve().is_relative_to(root.resolve()):
            return f"{name} is a link leading outside {root}"
    return ""


def scan_illumina_root(root: Path) -> list:
    """What the watcher sees in one folder of run folders (no database): each run's
    progress, when its marker will be old enough, and the folders to watch."""
    import time

    from django.conf import settings

    from surveyor.watching import NOT_A_RUN, Seen

    grace, now = float(settings.REFINERY_ILLUMINA_GRACE_S), time.time()
    seen = []
    for candidate in run_folders(root):
        name = clean(candidate.path.name)
        if candidate.problem:
            seen.append(Seen(name, "problem", candidate.problem, signature=candidate.problem))
            continue
        try:
            folder = inspect_run_folder(candidate.path, root, grace, now)
        except Unsettled as error:
            seen.append(
                Seen(
                    name,
                    Progress.WAITING,
                    str(error),
                    signature="unsettled",
                    ready_at=error.ready_at,
                    watch=candidate.path,
                )
            )
            continue
        except (FolderProblem, OSError) as error:
            why = str(error) if isinstance(error, FolderProblem) else f"cannot be read: {error}"
            seen.append(Seen(name, "problem", why, signature=why, watch=candidate.path))
            continue
        sheet = folder.sample_sheet.sha256 if folder.sample_sheet else ""
        # A survey records a run waiting for its grace period as still sequencing.
        recorded = Progress.SEQUENCING if folder.progress == Progress.WAITING else folder.progress
        seen.append(
            Seen(
                folder.run_info.run_id,
                folder.progress,
                folder.reason,
                signature=f"{recorded}|{sheet}|{folder.path}",
                ready_at=folder.ready_at,
                watch=candidate.path,
            )
        )
    # A folder without RunInfo.xml yet may become a run: watch it for RunInfo.xml.
    watched = {s.watch for s in seen}
    try:
        entries = sorted(root.iterdir())
    except OSError:
        entries = []
    for entry in entries:
        hidden = entry.name.startswith(".")
        if entry not in watched and not hidden and not entry.is_symlink() and entry.is_dir():
            seen.append(Seen(clean(entry.name), NOT_A_RUN, "", watch=entry))
    return seen
