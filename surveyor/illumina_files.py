"""The files an Illumina run folder holds about itself, read with caps: which
instrument wrote it (RunParameters.xml and the instrument id's prefix), its
completion markers and their ctimes, RunCompletionStatus.xml and the sample
sheet. Every file comes from a folder anyone on the instrument network may write
to: sizes are capped before parsing, and a problem is a `FolderProblem` whose
message names the file and what is wrong with it (see illumina_folders.py for
what a survey decides from them)."""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

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


def describe_age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
