"""Reading the small files of a MinKNOW run folder: the final summary (key=value
text), the report (JSON) and the run info a pod5 file holds, each opened
without following a link, and each refused, with why, when it is not what
MinKNOW writes (surveyor/nanopore_scan.py's hostile-source rules).

Each reader adds what it refuses to `skipped` and returns None; the scan goes on.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from common.filenames import control_character

if TYPE_CHECKING:
    from surveyor.nanopore_scan import Pod5Seen

MAX_METADATA_BYTES = 4 * 1024 * 1024


@dataclass
class Skipped:
    """Something of a run folder the survey did not read, and why."""

    path: str
    why: str

    def __str__(self) -> str:
        return f"{self.path}: {self.why}"


def open_plain_file(path: Path, skipped: list[Skipped]) -> tuple[int, int] | None:
    """(descriptor, size) of a regular file opened without following a link."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as error:
        skipped.append(Skipped(str(path), f"cannot read it: {error.strerror}"))
        return None
    status = os.fstat(descriptor)
    if not stat.S_ISREG(status.st_mode):
        os.close(descriptor)
        skipped.append(Skipped(str(path), "not a regular file"))
        return None
    return descriptor, status.st_size


def read_small_text(entry: os.DirEntry, skipped: list[Skipped]) -> str | None:
    opened = open_plain_file(Path(entry.path), skipped)
    if opened is None:
        return None
    descriptor, size = opened
    with os.fdopen(descriptor, "rb") as handle:
        if size > MAX_METADATA_BYTES:
            skipped.append(
                Skipped(entry.path, f"{size} bytes, more than the {MAX_METADATA_BYTES} expected")
            )
            return None
        try:
            data = handle.read(MAX_METADATA_BYTES + 1)
        except OSError as error:
            skipped.append(Skipped(entry.path, f"cannot read it: {error.strerror}"))
            return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        skipped.append(Skipped(entry.path, f"not UTF-8 text (byte {error.start})"))
        return None


def read_key_values(entry: os.DirEntry, skipped: list[Skipped]) -> dict[str, str] | None:
    text = read_small_text(entry, skipped)
    if text is None:
        return None
    values = {}
    for line in text.splitlines():
        key, equals, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not equals or not key or control_character(key + value) is not None:
            continue
        values[key[:100]] = value[:1000]
    return values


def read_json(entry: os.DirEntry, skipped: list[Skipped]) -> dict | None:
    text = read_small_text(entry, skipped)
    if text is None:
        return None
    try:
        document = json.loads(text)
    except ValueError as error:
        skipped.append(Skipped(entry.path, f"not JSON: {error}"))
        return None
    if not isinstance(document, dict):
        skipped.append(Skipped(entry.path, "not a JSON object"))
        return None
    return document


RUN_INFO_FIELDS = (
    "protocol_run_id",
    "acquisition_id",
    "flow_cell_id",
    "flow_cell_product_code",
    "sample_id",
    "experiment_name",
    "sequencing_kit",
    "protocol_name",
    "system_name",
    "system_type",
    "sequencer_position",
    "sequencer_position_type",
    "software",
)


def pod5_run_info(pod5_files: list[Pod5Seen], skipped: list[Skipped]) -> dict[str, str]:
    """The run info a complete pod5 file of a run holds (a running run has no
    summary or report yet): the first of `pod5_files` that can say; {} while
    none can."""
    import pod5

    for seen in pod5_files[:3]:
        if not (seen.start_signature and seen.end_signature):
            continue
        try:
            with pod5.Reader(seen.path) as reader:
                for record in reader.reads():
                    info = record.run_info
                    values = {name: str(getattr(info, name, "") or "") for name in RUN_INFO_FIELDS}
                    values["protocol_start_time"] = info.protocol_start_time.isoformat()
                    return values
        except Exception as error:  # a damaged file: the downloader reports it fully
            skipped.append(
                Skipped(str(seen.path), f"its run info cannot be read: {type(error).__name__}")
            )
    return {}
