"""What an Illumina run folder says about itself: which instrument wrote it
(RunParameters.xml and the instrument id's prefix), whether the run is still
being sequenced, and, once it is not, whether the instrument says it succeeded.

Completion depends on the instrument (see the table in README.md, "Illumina
runs"): NovaSeq 6000, NovaSeq X, iSeq and NextSeq 1000/2000 write
`CopyComplete.txt` once the run has been copied to its output folder (after
`RTAComplete.txt`); the others write only `RTAComplete.txt` (NextSeq 500/550:
`.txt` or `.xml`). Newer instruments also write `RunCompletionStatus.xml`, which
tells a run that completed from one that was stopped or failed.

A marker counts once it is older than a grace period measured by its **ctime**:
a copy to NFS keeps the source's mtime, so an mtime may say "an hour old" of a
file that arrived a second ago; the ctime is when this file system got it.

Every file here comes from a folder anyone on the instrument network may write
to: sizes are capped before parsing, and a problem is a `FolderProblem` whose
message names the file and what is wrong with it.
"""

from __future__ import annotations

import hashlib
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from common.illumina.run_info import RunInfo, RunInfoError, read_run_info

RUN_PARAMETERS_NAMES = ("RunParameters.xml", "runParameters.xml")
RUN_PARAMETERS_MAX_BYTES = 4 * 1024 * 1024
COMPLETION_STATUS_NAME = "RunCompletionStatus.xml"
COMPLETION_STATUS_MAX_BYTES = 1024 * 1024
SAMPLE_SHEET_NAME = "SampleSheet.csv"
SAMPLE_SHEET_MAX_BYTES = 4 * 1024 * 1024
COPY_COMPLETE = "CopyComplete.txt"
RTA_COMPLETE = ("RTAComplete.txt", "RTAComplete.xml")
# Every file whose appearance may change what a survey decides (the watcher's events).
MARKER_NAMES = frozenset(
    {COPY_COMPLETE, *RTA_COMPLETE, COMPLETION_STATUS_NAME, SAMPLE_SHEET_NAME, "RunInfo.xml"}
)
# What RunCompletionStatus.xml says of a run that went as planned.
SUCCESS_STATUSES = frozenset({"RunCompleted", "CompletedAsPlanned", "SuccessfullyCompleted"})
PLAIN_TEXT = re.compile(r"[^\x20-\x7e]")


class FolderProblem(Exception):
    """The run folder cannot be used as it is; the message says which file and why."""


class Unsettled(FolderProblem):
    """A file the survey needs is unusable but younger than the grace period: it
    may still be being written. The survey looks again later."""

    def __init__(self, message: str, ready_at: float):
        super().__init__(message)
        self.ready_at = ready_at


def settling(path: Path, problem: str, grace_s: float, now: float) -> FolderProblem:
    """The problem to raise for an unusable file: Unsettled while it is young."""
    try:
        written = path.stat().st_ctime
    except OSError:
        return FolderProblem(problem)
    if now - written < grace_s:
        return Unsettled(
            f"{problem} (written {describe_age(now - written)} ago)", written + grace_s
        )
    return FolderProblem(problem)


@dataclass(frozen=True)
class Instrument:
    """A kind of instrument: its name and whether it writes CopyComplete.txt."""

    type: str
    writes_copy_complete: bool


# Instrument id prefixes, longest first (ST-E before E, MN before M, NB before N…).
INSTRUMENT_PREFIXES: tuple[tuple[str, Instrument], ...] = (
    ("ST-E", Instrument("HiSeq X", False)),
    ("LH", Instrument("NovaSeq X", True)),
    ("VH", Instrument("NextSeq 2000", True)),
    ("VL", Instrument("NextSeq 1000", True)),
    ("NB", Instrument("NextSeq 500/550", False)),
    ("NS", Instrument("NextSeq 500/550", False)),
    ("MN", Instrument("MiniSeq", False)),
    ("FS", Instrument("iSeq 100", True)),
    ("SN", Instrument("HiSeq 2000", False)),
    ("A", Instrument("NovaSeq 6000", True)),
    ("D", Instrument("HiSeq 2500", False)),
    ("E", Instrument("HiSeq X", False)),
    ("J", Instrument("HiSeq 3000", False)),
    ("K", Instrument("HiSeq 4000", False)),
    ("M", Instrument("MiSeq", False)),
)
UNKNOWN = Instrument("", False)
# What RunParameters.xml's InstrumentType / Application names mean.
TYPE_NAMES: tuple[tuple[str, Instrument], ...] = (
    ("novaseqx", Instrument("NovaSeq X", True)),
    ("nextseq2000", Instrument("NextSeq 2000", True)),
    ("nextseq1000", Instrument("NextSeq 1000", True)),
    ("novaseq", Instrument("NovaSeq 6000", True)),
    ("iseq", Instrument("iSeq 100", True)),
    ("nextseq", Instrument("NextSeq 500/550", False)),
    ("miniseq", Instrument("MiniSeq", False)),
    ("miseq", Instrument("MiSeq", False)),
    ("hiseq", Instrument("HiSeq", False)),
)


def instrument_from_id(instrument_id: str) -> Instrument:
    """The instrument an id such as A01234, LH00123 or M05678 belongs to."""
    for prefix, instrument in INSTRUMENT_PREFIXES:
        rest = instrument_id[len(prefix) :]
        if instrument_id.startswith(prefix) and (prefix == "ST-E" or rest[:1].isdigit()):
            return instrument
    return UNKNOWN


def instrument_from_name(name: str) -> Instrument:
    """The instrument RunParameters.xml names (`NovaSeqXPlus`, `NextSeq 2000`,
    `MiSeq Control Software`, …)."""
    squashed = re.sub(r"[^a-z0-9]", "", name.lower())
    for key, instrument in TYPE_NAMES:
        if key in squashed:
            return instrument
    return UNKNOWN


@dataclass(frozen=True)
class RunParameters:
    instrument_id: str = ""
    instrument_name: str = ""  # InstrumentType, or the control software's name
    metadata: dict = field(default_factory=dict)


def read_run_parameters(folder: Path) -> RunParameters | None:
    """RunParameters.xml (or runParameters.xml), if the folder has one."""
    for name in RUN_PARAMETERS_NAMES:
        path = folder / name
        if path.is_file():
            break
    else:
        return None
    root = parse_capped_xml(path, RUN_PARAMETERS_MAX_BYTES)
    found: dict[str, str] = {}
    for element in root.iter():
        text = (element.text or "").strip()
        if text and element.tag not in found and len(element) == 0:
            found[element.tag] = text
    instrument_id = next(
        (
            found[tag]
            for tag in (
                "ScannerID",
                "InstrumentName",
                "InstrumentId",
                "InstrumentID",
                "InstrumentSerialNumber",
            )
            if tag in found
        ),
        "",
    )
    name = next(
        (found[t] for t in ("InstrumentType", "ApplicationName", "Application") if t in found), ""
    )
    metadata = {
        key: clean(found[tag])
        for key, tag in (
            ("application", "ApplicationName"),
            ("application", "Application"),
            ("application_version", "ApplicationVersion"),
            ("rta_version", "RTAVersion"),
            ("rta_version", "RtaVersion"),
            ("experiment_name", "ExperimentName"),
            ("chemistry", "Chemistry"),
            ("flowcell_mode", "FlowCellMode"),
            ("side", "Side"),
        )
        if tag in found
    }
    return RunParameters(clean(instrument_id), clean(name), metadata)


@dataclass(frozen=True)
class Marker:
    name: str
    ctime: float


@dataclass(frozen=True)
class CompletionStatus:
    succeeded: bool
    status: str  # as the instrument wrote it, cleaned for display
    ctime: float


def read_completion_status(folder: Path) -> CompletionStatus | None:
    """RunCompletionStatus.xml, if the instrument wrote one."""
    path = folder / COMPLETION_STATUS_NAME
    if not path.is_file():
        return None
    root = parse_capped_xml(path, COMPLETION_STATUS_MAX_BYTES)
    values = {
        element.tag: clean(element.text or "")
        for element in root.iter()
        if element.tag in ("RunStatus", "CompletionStatus", "ErrorDescription", "Message")
        and (element.text or "").strip()
    }
    statuses = [values[t] for t in ("RunStatus", "CompletionStatus") if t in values]
    if not statuses:
        raise FolderProblem(f"{COMPLETION_STATUS_NAME} has neither RunStatus nor CompletionStatus")
    succeeded = any(status in SUCCESS_STATUSES for status in statuses)
    status = " / ".join(statuses)
    for detail in ("ErrorDescription", "Message"):
        if detail in values and not succeeded:
            status += f" ({values[detail][:300]})"
    return CompletionStatus(succeeded, status, ctime_of(path))


def completion_marker(folder: Path, instrument: Instrument) -> Marker | None:
    """The marker that says the instrument finished writing the folder, if it is there."""
    names = (COPY_COMPLETE,) if instrument.writes_copy_complete else RTA_COMPLETE
    for name in names:
        path = folder / name
        if path.is_file():
            return Marker(name, ctime_of(path))
    return None


def ctime_of(path: Path) -> float:
    try:
        return path.stat().st_ctime
    except OSError as error:
        raise FolderProblem(f"cannot read {path.name}: {error.strerror or error}") from None


@dataclass(frozen=True)
class SampleSheet:
    text: str
    sha256: str
    ctime: float


def read_sample_sheet(folder: Path) -> SampleSheet | None:
    """SampleSheet.csv at the folder's top, if there is one."""
    path = folder / SAMPLE_SHEET_NAME
    if not path.is_file():
        return None
    data = read_capped(path, SAMPLE_SHEET_MAX_BYTES)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise FolderProblem(
            f"{SAMPLE_SHEET_NAME} is not UTF-8 text (byte {error.start}): save it as UTF-8 CSV"
        ) from None
    if "\x00" in text:
        raise FolderProblem(f"{SAMPLE_SHEET_NAME} holds NUL bytes: it is not a CSV file")
    return SampleSheet(text, hashlib.sha256(data).hexdigest(), ctime_of(path))


def read_capped(path: Path, limit: int) -> bytes:
    """The file's bytes, refusing one larger than `limit` without reading it all."""
    try:
        with open(path, "rb") as stream:
            data = stream.read(limit + 1)
    except OSError as error:
        raise FolderProblem(f"cannot read {path.name}: {error.strerror or error}") from None
    if len(data) > limit:
        raise FolderProblem(f"{path.name} is larger than {limit} bytes: it cannot be what it says")
    return data


def parse_capped_xml(path: Path, limit: int) -> ET.Element:
    """Parse an XML file of at most `limit` bytes (expat refuses entity expansion
    bombs, and ElementTree fetches no external entity)."""
    data = read_capped(path, limit)
    try:
        return ET.fromstring(data)
    except ET.ParseError as error:
        raise FolderProblem(f"{path.name} is not well-formed XML: {error}") from None


def clean(text: str, limit: int = 200) -> str:
    """Text from a run folder, fit for a terminal and a log line."""
    return PLAIN_TEXT.sub("?", text.strip())[:limit]


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


def describe_age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


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
