"""Sample sheets: v1 (bcl2fastq) and v2 (BCL Convert), checked the way a converter
checks them, every refusal naming the line.

What comes out is one `SampleSheet`: samples in sheet order (their `S<n>` number
is the position of their first row), the settings a converter acts on, and the
`OverrideCycles` string when there is one.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from processors.bcl.errors import ConversionError

SAMPLE_SHEET_MAX_BYTES = 8 * 1024 * 1024
ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]+$")
INDEX_PATTERN = re.compile(r"^[ACGTN]*$")
OVERRIDE_SEGMENT = re.compile(r"([YINU])(\d+|\*)")


@dataclass(frozen=True)
class Sample:
    sample_id: str
    name: str
    project: str
    lane: int | None
    index: str
    index2: str
    number: int  # S<n>: the position of the sample's first row among the samples
    line: int  # the line of the sample sheet this row came from


@dataclass
class SampleSheet:
    version: int
    samples: list[Sample]
    settings: dict[str, str] = field(default_factory=dict)
    reads: dict[str, int] = field(default_factory=dict)
    path: str = "SampleSheet.csv"

    @property
    def override_cycles(self) -> str | None:
        return self.settings.get("OverrideCycles") or None

    def setting(self, *names: str, default: str = "") -> str:
        for name in names:
            if self.settings.get(name, "") != "":
                return self.settings[name]
        return default

    def flag(self, *names: str) -> bool:
        return self.setting(*names).strip().lower() in ("1", "true", "yes", "y")

    @property
    def has_lanes(self) -> bool:
        return any(sample.lane is not None for sample in self.samples)

    def samples_in_lane(self, lane: int) -> list[Sample]:
        return [s for s in self.samples if s.lane is None or s.lane == lane]


def read_sample_sheet(path: Path) -> SampleSheet:
    try:
        size = path.stat().st_size
        if size > SAMPLE_SHEET_MAX_BYTES:
            raise ConversionError(f"is {size} bytes; a sample sheet is at most 8 MiB", path)
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise ConversionError("is missing", path) from None
    except UnicodeDecodeError:
        raise ConversionError("is not UTF-8 text", path) from None
    except OSError as error:
        raise ConversionError(f"cannot be read ({error.strerror or error})", path) from None
    return parse_sample_sheet(text, path.name)


def parse_sample_sheet(text: str, name: str = "SampleSheet.csv") -> SampleSheet:
    sections = _sections(text, name)
    header = _key_values(sections.get("Header", []))
    version = 2 if header.get("FileFormatVersion", "").strip() == "2" else 1
    if version == 2 or "BCLConvert_Data" in sections:
        version = 2
        settings = _key_values(sections.get("BCLConvert_Settings", []))
        data = sections.get("BCLConvert_Data")
        data_name = "BCLConvert_Data"
    else:
        settings = _key_values(sections.get("Settings", []))
        data = sections.get("Data")
        data_name = "Data"
    if data is None:
        raise ConversionError(f"has no [{data_name}] section", name)
    reads = _reads(sections.get("Reads", []), version, name)
    samples = _samples(data, data_name, name)
    sheet = SampleSheet(version=version, samples=samples, settings=settings, reads=reads, path=name)
    _check_settings(sheet, sections, name)
    return sheet


def _sections(text: str, name: str) -> dict[str, list[tuple[int, list[str]]]]:
    sections: dict[str, list[tuple[int, list[str]]]] = {}
    current: list[tuple[int, list[str]]] | None = None
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [cell.strip() for cell in row]
        while cells and cells[-1] == "":
            cells.pop()
        if not cells:
            continue
        first = cells[0]
        if first.startswith("[") and first.endswith("]"):
            section = first[1:-1].strip()
            if section in sections:
                raise ConversionError(f"line {number}: section [{section}] appears twice", name)
            current = sections.setdefault(section, [])
            continue
        if current is None:
            raise ConversionError(f"line {number}: text before the first [Section]", name)
        current.append((number, cells))
    return sections


def _key_values(rows: list[tuple[int, list[str]]]) -> dict[str, str]:
    return {cells[0]: (cells[1] if len(cells) > 1 else "") for _number, cells in rows}


def _reads(rows: list[tuple[int, list[str]]], version: int, name: str) -> dict[str, int]:
    reads: dict[str, int] = {}
    for number, cells in rows:
        if version == 2 and len(cells) >= 2:
            key, value = cells[0], cells[1]
        elif version == 1:
            key, value = f"Read{len(reads) + 1}Cycles", cells[0]
        else:
            continue
        try:
            reads[key] = int(value)
        except ValueError:
            raise ConversionError(
                f"line {number}: [Reads] {value!r} is not a number", name
            ) from None
    return reads


def _samples(rows: list[tuple[int, list[str]]], section: str, name: str) -> list[Sample]:
    if not rows:
        raise ConversionError(f"[{section}] has no column header row", name)
    header_line, header = rows[0]
    columns = {column.lower(): position for position, column in enumerate(header)}
    if "sample_id" not in columns:
        raise ConversionError(f"line {header_line}: [{section}] has no Sample_ID column", name)
    samples: list[Sample] = []
    numbers: dict[str, int] = {}
    seen: dict[tuple[int | None, str], int] = {}
    barcodes: dict[tuple[int | None, str, str], int] = {}
    for line, cells in rows[1:]:

        def cell(column: str, cells=cells) -> str:
            position = columns.get(column.lower())
            return cells[position].strip() if position is not None and position < len(cells) else ""

        sample_id = cell("Sample_ID")
        if not ID_PATTERN.match(sample_id):
            raise ConversionError(
                f"line {line}: Sample_ID {sample_id[:60]!r} must be letters, digits, _ or -", name
            )
        sample_name = cell("Sample_Name") or sample_id
        if not ID_PATTERN.match(sample_name):
            raise ConversionError(
                f"line {line}: Sample_Name {sample_name[:60]!r} must be letters, digits, _ or -",
                name,
            )
        project = cell("Sample_Project")
        if project and not ID_PATTERN.match(project):
            raise ConversionError(
                f"line {line}: Sample_Project {project[:60]!r} must be letters, digits, _ or -",
                name,
            )
        lane_text = cell("Lane")
        lane = None
        if lane_text:
            if not lane_text.isdigit() or not 1 <= int(lane_text) <= 16:
                raise ConversionError(f"line {line}: Lane {lane_text[:10]!r} is not 1..16", name)
            lane = int(lane_text)
        index, index2 = cell("index").upper(), cell("index2").upper()
        for column, value in (("index", index), ("index2", index2)):
            if not INDEX_PATTERN.match(value):
                raise ConversionError(
                    f"line {line}: {column} {value[:40]!r} may hold only A, C, G, T and N", name
                )
        if (lane, sample_id) in seen:
            raise ConversionError(
                f"line {line}: Sample_ID {sample_id} appears twice in "
                f"{'lane ' + str(lane) if lane else 'the sheet'} (line {seen[lane, sample_id]})",
                name,
            )
        seen[lane, sample_id] = line
        if (lane, index, index2) in barcodes:
            raise ConversionError(
                f"line {line}: index {index}{'+' + index2 if index2 else ''} is also on line "
                f"{barcodes[lane, index, index2]}",
                name,
            )
        barcodes[lane, index, index2] = line
        number = numbers.setdefault(sample_id, len(numbers) + 1)
        samples.append(Sample(sample_id, sample_name, project, lane, index, index2, number, line))
    if not samples:
        raise ConversionError(f"[{section}] has no samples", name)
    if any(s.lane is None for s in samples) and any(s.lane is not None for s in samples):
        raise ConversionError("some rows have a Lane and some do not", name)
    return samples


def _check_settings(sheet: SampleSheet, sections: dict, name: str) -> None:
    for key in ("BarcodeMismatchesIndex1", "BarcodeMismatchesIndex2"):
        value = sheet.settings.get(key, "")
        if value and (not value.isdigit() or int(value) > 2):
            raise ConversionError(f"{key} is {value!r}; it must be 0, 1 or 2", name)
    override = sheet.override_cycles
    if override:
        parse_override_cycles(override, name)


def parse_override_cycles(text: str, name: str = "SampleSheet.csv") -> list[list[tuple[str, int]]]:
    """`Y151;I8U9;I8;Y151` → one list of (kind, cycles) per read; `*` is resolved by the caller
    (it stands for the rest of the read) and comes back as -1."""
    reads = []
    for part in text.strip().split(";"):
        part = part.strip().upper()
        segments = []
        position = 0
        for match in OVERRIDE_SEGMENT.finditer(part):
            if match.start() != position:
                break
            count = match.group(2)
            segments.append((match.group(1), -1 if count == "*" else int(count)))
            position = match.end()
        if position != len(part) or not segments:
            raise ConversionError(
                f"OverrideCycles {text[:80]!r}: {part!r} is not segments such as Y151 or U8I8", name
            )
        reads.append(segments)
    return reads
