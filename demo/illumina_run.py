"""Generated Illumina run folders, in the layouts of five instruments, for the
tests and the demo: RunInfo.xml, RunParameters.xml, a few base-call files in the
instrument's own format and paths, an optional SampleSheet.csv, and the markers
the instrument writes as the run ends.

    python -m demo.illumina_run DIR --layout novaseq6000 [--finished] [--sample-sheet]

The base calls are small and random (seeded): enough to look like a run folder
to anything that walks it, not a real sequencing run.
"""

from __future__ import annotations

import argparse
import gzip
import random
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

COPY_COMPLETE = "CopyComplete.txt"
RTA_COMPLETE = "RTAComplete.txt"
COMPLETION_STATUS = "RunCompletionStatus.xml"


@dataclass(frozen=True)
class Layout:
    """One instrument's way of writing a run folder."""

    name: str
    instrument_id: str
    flowcell: str
    run_id_format: str  # {date} {instrument} {number} {flowcell}
    date_format: str  # for the run id
    info_date: str  # RunInfo's Date: "iso", "us" (4/14/2019 1:17:20 PM) or "yymmdd"
    run_parameters: str  # the RunParameters.xml body's template
    run_parameters_name: str
    markers: tuple[str, ...]  # written, in this order, when the run ends
    success_status: str = ""  # RunCompletionStatus.xml body when the run completed
    failure_status: str = ""  # and when it failed
    base_calls: str = "cbcl"  # "bcl" (per tile), "bgzf" (NextSeq 500), "cbcl"
    lanes: int = 1
    reads: tuple[tuple[int, bool], ...] = ((8, False), (4, True), (8, False))

    def run_id(self, number: int, when: datetime) -> str:
        return self.run_id_format.format(
            date=when.strftime(self.date_format),
            instrument=self.instrument_id,
            number=number,
            flowcell=self.flowcell,
        )


LAYOUTS: dict[str, Layout] = {
    "miseq": Layout(
        name="MiSeq",
        instrument_id="M01234",
        flowcell="000000000-ABC12",
        run_id_format="{date}_{instrument}_{number:04d}_{flowcell}",
        date_format="%y%m%d",
        info_date="yymmdd",
        run_parameters_name="runParameters.xml",
        run_parameters=(
            "<RunParameters><Setup><ApplicationName>MiSeq Control Software</ApplicationName>"
            "<ApplicationVersion>2.6.2.1</ApplicationVersion></Setup>"
            "<ScannerID>{instrument}</ScannerID><RTAVersion>1.18.54</RTAVersion>"
            "<ExperimentName>demo</ExperimentName></RunParameters>"
        ),
        markers=(RTA_COMPLETE,),
        base_calls="bcl",
    ),
    "nextseq500": Layout(
        name="NextSeq 500",
        instrument_id="NB501234",
        flowcell="HABCDEFXY",
        run_id_format="{date}_{instrument}_{number:04d}_A{flowcell}",
        date_format="%y%m%d",
        info_date="us",
        run_parameters_name="RunParameters.xml",
        run_parameters=(
            "<RunParameters><Setup><ApplicationName>NextSeq Control Software</ApplicationName>"
            "<ApplicationVersion>2.2.0.4</ApplicationVersion></Setup>"
            "<InstrumentID>{instrument}</InstrumentID><RTAVersion>2.4.11</RTAVersion>"
            "<Chemistry>NextSeq High</Chemistry></RunParameters>"
        ),
        markers=(RTA_COMPLETE,),
        base_calls="bgzf",
        lanes=2,
    ),
    "novaseq6000": Layout(
        name="NovaSeq 6000",
        instrument_id="A01234",
        flowcell="HABCDEFXY",
        run_id_format="{date}_{instrument}_{number:04d}_A{flowcell}",
        date_format="%y%m%d",
        info_date="us",
        run_parameters_name="RunParameters.xml",
        run_parameters=(
            "<RunParameters><Application>NovaSeq Control Software</Application>"
            "<ApplicationVersion>1.7.5</ApplicationVersion><RtaVersion>v3.4.4</RtaVersion>"
            "<InstrumentName>{instrument}</InstrumentName><Side>A</Side>"
            "<RfidsInfo><FlowCellMode>SP</FlowCellMode></RfidsInfo></RunParameters>"
        ),
        markers=(RTA_COMPLETE, COPY_COMPLETE),
        lanes=2,
    ),
    "nextseq2000": Layout(
        name="NextSeq 2000",
        instrument_id="VH01234",
        flowcell="AAABCDEM5",
        run_id_format="{date}_{instrument}_{number}_{flowcell}",
        date_format="%Y%m%d",
        info_date="iso",
        run_parameters_name="RunParameters.xml",
        run_parameters=(
            "<RunParameters><InstrumentType>NextSeq 2000</InstrumentType>"
            "<InstrumentSerialNumber>{instrument}</InstrumentSerialNumber>"
            "<ApplicationName>NextSeq 1000/2000 Control Software</ApplicationName>"
            "<ApplicationVersion>1.5.0.42699</ApplicationVersion></RunParameters>"
        ),
        markers=(RTA_COMPLETE, COPY_COMPLETE, COMPLETION_STATUS),
        success_status=(
            "<RunCompletionStatus><CompletionStatus>CompletedAsPlanned</CompletionStatus>"
            "<RunId>{run_id}</RunId></RunCompletionStatus>"
        ),
        failure_status=(
            "<RunCompletionStatus><CompletionStatus>ExceptionEndedEarly</CompletionStatus>"
            "<ErrorDescription>Fluidics check failed</ErrorDescription>"
            "<RunId>{run_id}</RunId></RunCompletionStatus>"
        ),
    ),
    "novaseqx": Layout(
        name="NovaSeq X",
        instrument_id="LH00123",
        flowcell="22ABCDLT3",
        run_id_format="{date}_{instrument}_{number:04d}_A{flowcell}",
        date_format="%Y%m%d",
        info_date="iso",
        run_parameters_name="RunParameters.xml",
        run_parameters=(
            "<RunParameters><InstrumentType>NovaSeqXPlus</InstrumentType>"
            "<InstrumentSerialNumber>{instrument}</InstrumentSerialNumber>"
            "<Side>A</Side><Application>NovaSeq X Series Control Software</Application>"
            "<SystemSuiteVersion>1.2.0.28691</SystemSuiteVersion></RunParameters>"
        ),
        markers=(RTA_COMPLETE, COPY_COMPLETE, COMPLETION_STATUS),
        success_status=(
            "<RunCompletionStatus><RunStatus>RunCompleted</RunStatus>"
            "<RunId>{run_id}</RunId></RunCompletionStatus>"
        ),
        failure_status=(
            "<RunCompletionStatus><RunStatus>RunErrored</RunStatus>"
            "<Message>Run stopped by the user</Message>"
            "<RunId>{run_id}</RunId></RunCompletionStatus>"
        ),
        lanes=2,
    ),
}

TILES = (1101, 1102)
CLUSTERS = 64


def run_info_xml(
    layout: Layout, run_id: str, number: int, when: datetime, tiles: tuple[int, ...] = TILES
) -> str:
    """RunInfo.xml as the instrument writes it, for `tiles` in every lane."""
    if layout.info_date == "iso":
        date = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    elif layout.info_date == "us":
        date = f"{when.month}/{when.day}/{when.year} {when.strftime('%I:%M:%S %p').lstrip('0')}"
    else:
        date = when.strftime("%y%m%d")
    reads = "".join(
        f'<Read Number="{n}" NumCycles="{cycles}" IsIndexedRead="{"Y" if index else "N"}"/>'
        for n, (cycles, index) in enumerate(layout.reads, start=1)
    )
    tile_entries = "".join(
        f"<Tile>{lane}_{tile}</Tile>" for lane in range(1, layout.lanes + 1) for tile in tiles
    )
    return (
        '<?xml version="1.0"?>\n'
        f'<RunInfo Version="6"><Run Id="{run_id}" Number="{number}">'
        f"<Flowcell>{layout.flowcell}</Flowcell><Instrument>{layout.instrument_id}</Instrument>"
        f"<Date>{date}</Date><Reads>{reads}</Reads>"
        f'<FlowcellLayout LaneCount="{layout.lanes}" SurfaceCount="1" SwathCount="1" '
        f'TileCount="{len(tiles)}"><TileSet TileNamingConvention="FourDigit"><Tiles>{tile_entries}'
        "</Tiles></TileSet></FlowcellLayout></Run></RunInfo>\n"
    )


def sample_sheet_csv(layout: Layout) -> str:
    lines = [
        "[Header]",
        "IEMFileVersion,5",
        f"Instrument Type,{layout.name}",
        "",
        "[Reads]",
        str(layout.reads[0][0]),
        str(layout.reads[-1][0]),
        "",
        "[Data]",
        "Lane,Sample_ID,Sample_Name,Sample_Project,index",
    ]
    for lane in range(1, layout.lanes + 1):
        lines += [f"{lane},S1,S1,demo,ACGT", f"{lane},S2,S2,demo,TGCA"]
    return "\n".join(lines) + "\n"


def write_base_calls(folder: Path, layout: Layout, rng: random.Random) -> None:
    """A few base-call files where the instrument puts them."""
    calls = folder / "Data" / "Intensities" / "BaseCalls"
    cycles = sum(cycles for cycles, _ in layout.reads)
    for lane in range(1, layout.lanes + 1):
        lane_dir = calls / f"L{lane:03d}"
        lane_dir.mkdir(parents=True, exist_ok=True)
        for tile in TILES:
            filtered = bytes(rng.choice((0, 1, 1, 1)) for _ in range(CLUSTERS))
            (lane_dir / f"s_{lane}_{tile}.filter").write_bytes(
                struct.pack("<III", 0, 3, CLUSTERS) + filtered
            )
        for cycle in range(1, cycles + 1):
            if layout.base_calls == "bgzf":
                body = struct.pack("<I", CLUSTERS * len(TILES)) + rng.randbytes(
                    CLUSTERS * len(TILES)
                )
                (lane_dir / f"{cycle:04d}.bcl.bgzf").write_bytes(gzip.compress(body, mtime=0))
                continue
            cycle_dir = lane_dir / f"C{cycle}.1"
            cycle_dir.mkdir(exist_ok=True)
            if layout.base_calls == "bcl":
                for tile in TILES:
                    body = struct.pack("<I", CLUSTERS) + rng.randbytes(CLUSTERS)
                    (cycle_dir / f"s_{lane}_{tile}.bcl").write_bytes(body)
            else:
                blocks = [gzip.compress(rng.randbytes(CLUSTERS // 2), mtime=0) for _ in TILES]
                header = struct.pack("<HIBBI", 1, 0, 2, 2, 0) + struct.pack("<I", len(TILES))
                for tile, block in zip(TILES, blocks, strict=True):
                    header += struct.pack("<IIII", tile, CLUSTERS, CLUSTERS // 2, len(block))
                header += b"\x00"
                header = header[:2] + struct.pack("<I", len(header)) + header[6:]
                (cycle_dir / f"L{lane:03d}_1.cbcl").write_bytes(header + b"".join(blocks))
    interop = folder / "InterOp"
    interop.mkdir(exist_ok=True)
    (interop / "TileMetricsOut.bin").write_bytes(bytes([3, 10]) + rng.randbytes(100))


def write_run_folder(
    parent: Path,
    layout: str | Layout,
    number: int = 42,
    when: datetime | None = None,
    sample_sheet: bool = False,
    finished: bool = False,
    failed: bool = False,
    seed: int = 0,
) -> Path:
    """A run folder under `parent`, named after its run id, as the instrument
    writes it while sequencing; `finished` adds the markers of its end (of a
    failed run with `failed`). Returns the folder."""
    layout = LAYOUTS[layout] if isinstance(layout, str) else layout
    when = when or datetime(2026, 1, 15, 13, 17, 20, tzinfo=UTC)
    run_id = layout.run_id(number, when)
    folder = parent / run_id
    folder.mkdir(parents=True)
    (folder / "RunInfo.xml").write_text(run_info_xml(layout, run_id, number, when))
    (folder / layout.run_parameters_name).write_text(
        layout.run_parameters.format(instrument=layout.instrument_id)
    )
    write_base_calls(folder, layout, random.Random(seed or number))
    if sample_sheet:
        add_sample_sheet(folder, layout)
    if finished:
        finish_run(folder, layout, failed=failed)
    return folder


def add_sample_sheet(folder: Path, layout: str | Layout) -> Path:
    layout = LAYOUTS[layout] if isinstance(layout, str) else layout
    path = folder / "SampleSheet.csv"
    path.write_text(sample_sheet_csv(layout))
    return path


def finish_run(folder: Path, layout: str | Layout, failed: bool = False) -> list[Path]:
    """Write the markers the instrument writes at the end of a run, in order.
    An instrument that does not write RunCompletionStatus.xml has no way to say
    that a run failed: `failed` then writes the same markers as success."""
    layout = LAYOUTS[layout] if isinstance(layout, str) else layout
    written = []
    for name in layout.markers:
        path = folder / name
        if name == COMPLETION_STATUS:
            template = layout.failure_status if failed else layout.success_status
            path.write_text(template.format(run_id=folder.name))
        elif name.endswith(".xml"):
            path.write_text("<RTAComplete/>")
        else:
            path.write_text(f"{datetime.now(UTC):%m/%d/%Y %H:%M:%S}\n")
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", type=Path, help="the folder to write the run folder in")
    parser.add_argument("--layout", choices=sorted(LAYOUTS), default="novaseq6000")
    parser.add_argument("--number", type=int, default=42, help="the run number")
    parser.add_argument("--finished", action="store_true", help="write the end-of-run markers")
    parser.add_argument("--failed", action="store_true", help="the instrument reports a failure")
    parser.add_argument("--sample-sheet", action="store_true", help="write SampleSheet.csv")
    args = parser.parse_args()
    folder = write_run_folder(
        args.dir, args.layout, number=args.number, sample_sheet=args.sample_sheet,
        finished=args.finished or args.failed, failed=args.failed,
    )  # fmt: skip
    print(folder)


if __name__ == "__main__":
    main()
