"""RunInfo.xml: a run's id, flow cell, instrument, date, read structure, lanes and
tiles, as every Illumina instrument writes it in the run folder's top level.

The file comes from a shared folder anyone on the instrument network can write
to, so it is treated as hostile: its size is capped before it is parsed (expat
refuses entity expansion bombs, and ElementTree resolves no external entities),
and every field it must have is checked, with a message that names the field.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

RUN_INFO_MAX_BYTES = 16 * 1024 * 1024
TILE_NAME = re.compile(r"^(\d{1,2})_(\d{1,6})$")


class RunInfoError(ValueError):
    """RunInfo.xml cannot be used; the message says which field and why."""


@dataclass(frozen=True)
class Read:
    number: int
    cycles: int
    is_index: bool
    is_reverse_complement: bool = False

    def as_dict(self) -> dict:
        return {
            "number": self.number,
            "cycles": self.cycles,
            "is_index": self.is_index,
            "is_reverse_complement": self.is_reverse_complement,
        }


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    run_number: int | None
    flowcell: str
    instrument: str
    date: datetime | None
    reads: tuple[Read, ...]
    lane_count: int
    surface_count: int | None = None
    swath_count: int | None = None
    tile_count: int | None = None
    tiles: tuple[str, ...] = field(default=())

    @property
    def total_cycles(self) -> int:
        return sum(read.cycles for read in self.reads)

    def first_cycle(self, read_number: int) -> int:
        """The run-wide number of a read's first cycle (cycles count on across reads)."""
        cycle = 1
        for read in self.reads:
            if read.number == read_number:
                return cycle
            cycle += read.cycles
        raise KeyError(f"RunInfo.xml has no read {read_number}")

    def read_structure(self) -> list[dict]:
        return [read.as_dict() for read in self.reads]


def read_run_info(path: Path) -> RunInfo:
    """Parse a RunInfo.xml file; RunInfoError when it cannot be used."""
    try:
        size = path.stat().st_size
        if size > RUN_INFO_MAX_BYTES:
            raise RunInfoError(
                f"{path.name} is {size} bytes; a RunInfo.xml is at most {RUN_INFO_MAX_BYTES}"
            )
        data = path.read_bytes()
    except OSError as error:
        raise RunInfoError(f"cannot read {path.name}: {error.strerror or error}") from None
    return parse_run_info(data)


def parse_run_info(data: bytes) -> RunInfo:
    if len(data) > RUN_INFO_MAX_BYTES:
        raise RunInfoError(f"RunInfo.xml is larger than {RUN_INFO_MAX_BYTES} bytes")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as error:
        raise RunInfoError(f"RunInfo.xml is not well-formed XML: {error}") from None
    run = root.find("Run") if root.tag == "RunInfo" else None
    if run is None:
        raise RunInfoError("RunInfo.xml has no RunInfo/Run element")
    run_id = _required_attribute(run, "Id", "Run")
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,255}", run_id):
        raise RunInfoError(f"Run@Id {run_id[:80]!r} has characters a run id cannot have")
    number = run.get("Number")
    reads = _reads(run)
    layout = run.find("FlowcellLayout")
    if layout is None:
        raise RunInfoError("RunInfo.xml has no Run/FlowcellLayout element")
    lane_count = _int(layout, "LaneCount", "FlowcellLayout", minimum=1, maximum=16)
    return RunInfo(
        run_id=run_id,
        run_number=_as_int(number, "Run@Number") if number not in (None, "") else None,
        flowcell=_text(run, "Flowcell"),
        instrument=_text(run, "Instrument"),
        date=parse_run_date(run.findtext("Date") or ""),
        reads=reads,
        lane_count=lane_count,
        surface_count=_optional_int(layout, "SurfaceCount"),
        swath_count=_optional_int(layout, "SwathCount"),
        tile_count=_optional_int(layout, "TileCount"),
        tiles=_tiles(layout, lane_count),
    )


def parse_run_date(text: str) -> datetime | None:
    """RunInfo's Date: ISO 8601 (`2023-01-01T12:00:00Z`), `4/14/2019 1:17:20 PM`
    or the older `230101` (yymmdd). None when empty; RunInfoError when unknown."""
    text = text.strip()
    if not text:
        return None
    for parse in (
        lambda t: datetime.fromisoformat(t.replace("Z", "+00:00")),
        lambda t: datetime.strptime(t, "%m/%d/%Y %I:%M:%S %p"),
        lambda t: datetime.strptime(t, "%y%m%d"),
        lambda t: datetime.strptime(t, "%Y%m%d"),
    ):
        try:
            moment = parse(text)
        except ValueError:
            continue
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    raise RunInfoError(f"Run/Date {text[:40]!r} is in no format an Illumina instrument writes")


def _reads(run: ET.Element) -> tuple[Read, ...]:
    elements = run.findall("Reads/Read")
    if not elements:
        raise RunInfoError("RunInfo.xml has no Run/Reads/Read elements")
    reads = []
    for element in elements:
        number = _int(element, "Number", "Read", minimum=1, maximum=16)
        reads.append(
            Read(
                number=number,
                cycles=_int(element, "NumCycles", f"Read {number}", minimum=1, maximum=10000),
                is_index=_flag(element, "IsIndexedRead", number),
                is_reverse_complement=_flag(element, "IsReverseComplement", number),
            )
        )
    numbers = [read.number for read in reads]
    if numbers != list(range(1, len(reads) + 1)):
        raise RunInfoError(f"Read numbers must be 1, 2, … in order, not {numbers}")
    return tuple(reads)


def _tiles(layout: ET.Element, lane_count: int) -> tuple[str, ...]:
    tiles = []
    for element in layout.findall("TileSet/Tiles/Tile"):
        name = (element.text or "").strip()
        match = TILE_NAME.match(name)
        if not match or not 1 <= int(match.group(1)) <= lane_count:
            raise RunInfoError(f"Tile {name[:40]!r} is not <lane>_<tile> with a lane of this run")
        tiles.append(name)
    return tuple(tiles)


def _required_attribute(element: ET.Element, name: str, where: str) -> str:
    value = (element.get(name) or "").strip()
    if not value:
        raise RunInfoError(f"RunInfo.xml: {where}@{name} is missing")
    return value


def _as_int(value: str, where: str, minimum: int = 0, maximum: int = 10**9) -> int:
    try:
        number = int(value)
    except ValueError:
        raise RunInfoError(f"RunInfo.xml: {where} is {value[:40]!r}, not a number") from None
    if not minimum <= number <= maximum:
        raise RunInfoError(f"RunInfo.xml: {where} is {number}, not in {minimum}..{maximum}")
    return number


def _int(element: ET.Element, name: str, where: str, minimum: int, maximum: int) -> int:
    return _as_int(_required_attribute(element, name, where), f"{where}@{name}", minimum, maximum)


def _optional_int(element: ET.Element, name: str) -> int | None:
    value = element.get(name)
    return _as_int(value, f"FlowcellLayout@{name}") if value not in (None, "") else None


def _flag(element: ET.Element, name: str, number: int) -> bool:
    value = (element.get(name) or "N").strip().upper()
    if value not in ("Y", "N"):
        raise RunInfoError(f"RunInfo.xml: Read {number}@{name} is {value[:10]!r}, not Y or N")
    return value == "Y"


def _text(element: ET.Element, name: str) -> str:
    value = (element.findtext(name) or "").strip()
    if not value:
        raise RunInfoError(f"RunInfo.xml: Run/{name} is missing")
    if len(value) > 64:
        raise RunInfoError(f"RunInfo.xml: Run/{name} is {len(value)} characters, at most 64")
    return value
