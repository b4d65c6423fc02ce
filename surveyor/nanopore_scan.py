"""Reading MinKNOW run folders from disk, without the database:
`scan_nanopore_root(path)` finds every run folder under a root
(`<protocol group>/<sample>/<start>_<device>_<flow cell>_<short run id>/`), what
its files say about the run (`final_summary_*.txt`, `report_*.json`, the pod5
files' run info) and each pod5 file's size and signatures.

The folder is a source like any other, so it is hostile: a link out of the
root, a file the survey cannot read, a name MinKNOW would not write, a report
that is not JSON: each is reported (`Skipped`: the path and why) and left out,
and the scan goes on with the rest. Nothing here follows a link or opens a
file by a name it has not checked. The run's small files (summary, report, a
pod5 file's run info) are read by surveyor/nanopore_files.py.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from common.filenames import UnsafeName, check_name, control_character
from common.pod5 import POD5_SIGNATURE
from surveyor.nanopore_files import (
    Skipped,
    open_plain_file,
    pod5_run_info,
    read_json,
    read_key_values,
)

# <YYYYMMDD>_<HHMM>_<device or position>_<flow cell>_<first 8 of the protocol run id>
RUN_FOLDER = re.compile(
    r"^(?P<date>\d{8})_(?P<time>\d{4})_(?P<device>[A-Za-z0-9-]+)_(?P<flowcell>[A-Za-z0-9-]+)"
    r"_(?P<short_id>[0-9a-fA-F]{8})$"
)
# A protocol run id (a UUID); a value the run's files give that is not one is ignored.
RUN_ID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z-]{0,63}$")
MAX_VALUE = 200  # characters kept of any other value the run's files give
# Where MinKNOW puts pod5 files (barcoded runs add one folder per barcode below).
POD5_FOLDERS = ("pod5", "pod5_pass", "pod5_fail", "pod5_skip")
MAX_LISTED = 100_000  # entries read from one folder


@dataclass
class Pod5Seen:
    """One pod5 file as it was at this look."""

    relative: str  # to the run folder, e.g. "pod5/FAX00001_ab12cd34_0.pod5"
    path: Path  # its real path
    size: int
    start_signature: bool
    end_signature: bool

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class RunFolder:
    """One MinKNOW run folder and what its files say."""

    path: Path
    group: str
    sample: str
    started: datetime
    device: str
    flowcell: str
    short_id: str
    final_summary: dict[str, str] | None = None
    final_summary_name: str = ""
    report: dict | None = None
    pod5_run_info: dict[str, str] = field(default_factory=dict)
    pod5: list[Pod5Seen] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """MinKNOW writes the final summary once every file of the run is written."""
        return self.final_summary is not None

    @property
    def protocol_run_id(self) -> str:
        """The run's id, from whichever of its files says it ("" while none does)."""
        for value in (
            (self.final_summary or {}).get("protocol_run_id"),
            _dig(self.report, "protocol_run_info", "run_id"),
            self.pod5_run_info.get("protocol_run_id"),
        ):
            if isinstance(value, str) and RUN_ID.match(value.strip()):
                return value.strip()
        return ""

    def says(self, summary_key: str, report_path: tuple[str, ...], pod5_key: str) -> str:
        """What the final summary, else the report, else the pod5 run info says (a
        text without control characters, cut to MAX_VALUE characters)."""
        for value in (
            (self.final_summary or {}).get(summary_key),
            _dig(self.report, *report_path) if report_path else None,
            self.pod5_run_info.get(pod5_key) if pod5_key else None,
        ):
            if isinstance(value, str) and value.strip() and control_character(value) is None:
                return value.strip()[:MAX_VALUE]
        return ""


@dataclass
class NanoporeScan:
    runs: list[RunFolder] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def _dig(document, *keys):
    for key in keys:
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return document


def scan_nanopore_root(path: str | Path) -> NanoporeScan:
    """Every MinKNOW run folder under `path` (or `path` itself, if it is one),
    with what the survey may read of it; what it must not read, in `skipped`."""
    root = Path(path).expanduser().resolve()
    scan = NanoporeScan()
    if not root.is_dir():
        scan.skipped.append(Skipped(str(path), "not a folder"))
        return scan
    if RUN_FOLDER.match(root.name):
        run = _read_run_folder(root, root.parent.parent.name, root.parent.name, scan)
        if run is not None:
            scan.runs.append(run)
        return scan
    for group in _subfolders(root, root, scan, "protocol group"):
        for sample in _subfolders(group, root, scan, "sample"):
            for folder in _subfolders(sample, root, scan, "run"):
                if not RUN_FOLDER.match(folder.name):
                    scan.skipped.append(
                        Skipped(
                            str(folder),
                            "not a MinKNOW run folder name "
                            "(<YYYYMMDD>_<HHMM>_<device>_<flow cell>_<8 hex digits of the run id>)",
                        )
                    )
                    continue
                run = _read_run_folder(folder, group.name, sample.name, scan)
                if run is not None:
                    scan.runs.append(run)
    return scan


def _entries(folder: Path, scan: NanoporeScan) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as listing:
            entries = []
            for entry in listing:
                if len(entries) >= MAX_LISTED:
                    scan.skipped.append(
                        Skipped(str(folder), f"more than {MAX_LISTED} entries: read the first")
                    )
                    break
                entries.append(entry)
    except OSError as error:
        scan.skipped.append(Skipped(str(folder), f"cannot list it: {error.strerror}"))
        return []
    return sorted(entries, key=lambda e: e.name)


def _plain(entry: os.DirEntry, scan: NanoporeScan) -> bool:
    """Whether a name is one MinKNOW could have written; hidden names (editors'
    and copies' temporary files) are left out silently."""
    if entry.name.startswith("."):
        return False
    try:
        check_name(entry.name, "the name")
    except UnsafeName as error:
        scan.skipped.append(Skipped(repr(entry.path), str(error)))
        return False
    return True


def _subfolders(folder: Path, root: Path, scan: NanoporeScan, what: str) -> list[Path]:
    """The plain, real subfolders of `folder`; links are reported and left out
    (one into the root would survey a run twice, one out of it is not ours)."""
    found = []
    for entry in _entries(folder, scan):
        if not _plain(entry, scan):
            continue
        if entry.is_symlink():
            target = Path(entry.path).resolve()
            where = "outside " + str(root) if not target.is_relative_to(root) else "inside the root"
            scan.skipped.append(Skipped(entry.path, f"a link to {target} ({where}): not followed"))
            continue
        if entry.is_dir(follow_symlinks=False):
            found.append(Path(entry.path))
        elif what != "run" or not entry.name.endswith((".txt", ".json", ".csv", ".html")):
            scan.skipped.append(Skipped(entry.path, f"not a {what} folder"))
    return found


def _read_run_folder(folder: Path, group: str, sample: str, scan: NanoporeScan) -> RunFolder | None:
    match = RUN_FOLDER.match(folder.name)
    try:
        started = datetime.strptime(f"{match['date']}{match['time']}", "%Y%m%d%H%M").replace(
            tzinfo=UTC
        )
    except ValueError:
        scan.skipped.append(Skipped(str(folder), "its name's start time is not a date"))
        return None
    run = RunFolder(
        path=folder,
        group=group,
        sample=sample,
        started=started,
        device=match["device"],
        flowcell=match["flowcell"],
        short_id=match["short_id"].lower(),
    )
    for entry in _entries(folder, scan):
        if not _plain(entry, scan):
            continue
        name = entry.name
        if name.startswith("final_summary_") and name.endswith(".txt"):
            summary = read_key_values(entry, scan.skipped)
            if summary is not None:
                run.final_summary, run.final_summary_name = summary, name
        elif name.startswith("report_") and name.endswith(".json"):
            report = read_json(entry, scan.skipped)
            if report is not None:
                run.report = report
        elif name in POD5_FOLDERS:
            if entry.is_symlink() or not entry.is_dir(follow_symlinks=False):
                scan.skipped.append(Skipped(entry.path, "not a folder (a link?): not followed"))
                continue
            _read_pod5_folder(Path(entry.path), folder, scan, run, depth=0)
    run.pod5.sort(key=lambda seen: _natural(seen.relative))
    if not run.final_summary and not run.report:
        run.pod5_run_info = pod5_run_info(run.pod5, scan.skipped)
    return run


def _natural(text: str) -> list:
    """Sort key: `x_2.pod5` before `x_10.pod5`."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _read_pod5_folder(
    folder: Path, run_folder: Path, scan: NanoporeScan, run: RunFolder, depth: int
) -> None:
    for entry in _entries(folder, scan):
        if not _plain(entry, scan):
            continue
        if entry.is_symlink():
            target = Path(entry.path).resolve()
            where = "outside the run folder" if not target.is_relative_to(run_folder) else "a link"
            scan.skipped.append(Skipped(entry.path, f"a link to {target} ({where}): not followed"))
            continue
        if entry.is_dir(follow_symlinks=False):
            if depth == 0:  # pod5_pass/barcode01/
                _read_pod5_folder(Path(entry.path), run_folder, scan, run, depth + 1)
            else:
                scan.skipped.append(Skipped(entry.path, "a folder where pod5 files were expected"))
            continue
        if not entry.name.endswith(".pod5"):
            scan.skipped.append(Skipped(entry.path, "not a .pod5 file"))
            continue
        seen = _look_at_pod5(Path(entry.path), run_folder, scan)
        if seen is not None:
            run.pod5.append(seen)


def _look_at_pod5(path: Path, run_folder: Path, scan: NanoporeScan) -> Pod5Seen | None:
    opened = open_plain_file(path, scan.skipped)
    if opened is None:
        return None
    descriptor, size = opened
    try:
        head = os.pread(descriptor, 8, 0)
        tail = os.pread(descriptor, 8, size - 8) if size >= 16 else b""
    except OSError as error:
        scan.skipped.append(Skipped(str(path), f"cannot read it: {error.strerror}"))
        return None
    finally:
        os.close(descriptor)
    return Pod5Seen(
        relative=path.relative_to(run_folder).as_posix(),
        path=path,
        size=size,
        start_signature=head == POD5_SIGNATURE,
        end_signature=tail == POD5_SIGNATURE,
    )


def watch_nanopore_root(root: Path) -> list:
    """What `manage.py watch nanopore_runs` sees in one folder (no database): each
    run's progress and a signature that changes when a survey would record
    something (the final summary, another finished pod5 file), with its folder
    to watch; the group and sample folders are watched too, for new runs."""
    from surveyor.watching import NOT_A_RUN, Seen

    scan = scan_nanopore_root(root)
    seen = []
    run_paths = set()
    for run in scan.runs:
        run_paths.add(run.path)
        finished = [p for p in run.pod5 if p.start_signature and p.end_signature]
        state = "complete" if run.complete else "sequencing"
        seen.append(
            Seen(
                run.protocol_run_id or run.path.name,
                state,
                f"{len(finished)} finished pod5 file(s) of {len(run.pod5)}",
                signature=f"{state}:{len(finished)}:{sum(p.size for p in finished)}",
                watch=run.path,
            )
        )
    for item in scan.skipped:
        seen.append(Seen(item.path, "problem", item.why, signature=item.why))
    root = Path(root)
    if root.is_dir() and not RUN_FOLDER.match(root.name):
        for group in _plain_folders(root):
            seen.append(Seen(group.name, NOT_A_RUN, "", watch=group))
            for sample in _plain_folders(group):
                if not any(path.parent == sample for path in run_paths):
                    seen.append(Seen(f"{group.name}/{sample.name}", NOT_A_RUN, "", watch=sample))
    return seen


def _plain_folders(path: Path) -> list[Path]:
    try:
        entries = sorted(path.iterdir())
    except OSError:
        return []
    return [e for e in entries if not e.name.startswith(".") and not e.is_symlink() and e.is_dir()]
