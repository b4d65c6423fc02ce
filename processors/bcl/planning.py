"""What a conversion will do, decided before any tile is read: the cycles to read and
the reads they make (RunInfo.xml and the sheet's OverrideCycles), each lane's samples
and how their indexes are matched, and which way round the i5 index is read.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from common.illumina.run_info import RunInfo, RunInfoError, read_run_info
from processors.bcl.adapters import AdapterRule, adapter_rules
from processors.bcl.barcodes import LaneBarcodes, PicardRules, check_collisions, reverse_complement
from processors.bcl.errors import ConversionError
from processors.bcl.fastq import BASES
from processors.bcl.layout import RunLayout
from processors.bcl.sample_sheet import SampleSheet, parse_override_cycles

# Instruments that read i5 as the reverse complement (ID prefixes, see the reference).
REVERSE_I5_PREFIXES = ("FS", "MN", "NB", "NS", "VH", "K", "J", "E", "ST-E", "A", "LH")


@dataclass
class ConvertOptions:
    barcode_mismatches: tuple[int, ...] | None = None  # per index; None: the sheet's, else 1
    include_non_pf: bool = False
    threads: int = 0  # 0: every core
    compression_level: int = 1  # isal levels 0-3; BCL Convert's default is 1
    i5_orientation: str = "auto"  # auto | as-written | reverse-complement
    create_index_fastqs: bool | None = None  # None: the sheet's CreateFastqForIndexReads
    no_lane_splitting: bool | None = None  # None: the sheet's NoLaneSplitting
    picard: PicardRules | None = None  # Picard's matching, read names and EAMSS
    run_name: str | None = None  # the read names' second field (default Run@Number)
    tiles: list[str] | None = None  # only these tiles ("<lane>_<tile>"), as BCL Convert's --tiles
    progress: object = None  # callable(done_tiles, total_tiles) or None

    @classmethod
    def from_settings(cls, **overrides) -> ConvertOptions:
        """The options a pipeline job uses: REFINERY_BCL_INCLUDE_NON_PF from Django's
        settings, everything else the sheet's or the defaults unless overridden."""
        from django.conf import settings

        values = {"include_non_pf": bool(getattr(settings, "REFINERY_BCL_INCLUDE_NON_PF", False))}
        values.update(overrides)
        return cls(**values)


@dataclass
class Output:
    """One FASTQ per sample and lane: a data read (R), an index read (I)."""

    key: str  # "R1", "R2", "I1", "I2"
    cycles: list[int]  # positions in the tile's calls array
    read_number: int


@dataclass
class Plan:
    run_folder: Path
    run_info: RunInfo
    cycles: list[int]  # run cycles to read, in order
    outputs: list[Output]
    index_columns: list[list[int]]  # per index read used for matching: calls columns
    umi_columns: list[list[int]]
    lanes: dict[int, LaneBarcodes]
    sample_names: dict[int, list[str]]  # lane → file stem per sample
    include_non_pf: bool
    level: int
    picard: PicardRules | None
    name_prefix: str
    picard_barcodes: dict[int, list[bytes]] = field(default_factory=dict)
    layout: RunLayout | None = None
    adapters: dict[str, AdapterRule] = field(default_factory=dict)  # "R1" → rule
    spool: Path | None = None  # where worker processes leave their tiles' gzip members


def read_segments(run_info: RunInfo, sheet: SampleSheet | None) -> list[list[tuple[str, int]]]:
    override = sheet.override_cycles if sheet else None
    if not override:
        return [[("I" if read.is_index else "Y", read.cycles)] for read in run_info.reads]
    parsed = parse_override_cycles(override, sheet.path if sheet else "SampleSheet.csv")
    if len(parsed) != len(run_info.reads):
        raise ConversionError(
            f"OverrideCycles {override!r} has {len(parsed)} reads, RunInfo.xml has "
            f"{len(run_info.reads)}",
            sheet.path if sheet else None,
        )
    segments = []
    for read, parts in zip(run_info.reads, parsed, strict=True):
        stars = sum(1 for _, count in parts if count < 0)
        fixed = sum(count for _, count in parts if count >= 0)
        if stars > 1 or (stars == 0 and fixed != read.cycles) or fixed > read.cycles:
            raise ConversionError(
                f"OverrideCycles {override!r}: read {read.number} has {read.cycles} cycles in "
                "RunInfo.xml, the segments do not add up to that",
                sheet.path if sheet else None,
            )
        segments.append(
            [(kind, count if count >= 0 else read.cycles - fixed) for kind, count in parts]
        )
    return segments


def make_plan(
    run_folder: Path, sheet: SampleSheet | None, options: ConvertOptions
) -> tuple[Plan, dict]:
    try:
        run_info = read_run_info(run_folder / "RunInfo.xml")
    except RunInfoError as error:
        raise ConversionError(str(error), run_folder / "RunInfo.xml") from None
    segments = read_segments(run_info, sheet)
    cycles: list[int] = []
    data_reads: list[list[int]] = []
    index_reads: list[list[int]] = []
    index_read_info = []
    umis: list[list[int]] = []
    cycle = 1
    for read, parts in zip(run_info.reads, segments, strict=True):
        data: list[int] = []
        index: list[int] = []
        for kind, count in parts:
            span = list(range(cycle, cycle + count))
            cycle += count
            if kind == "N":
                continue
            columns = list(range(len(cycles), len(cycles) + count))
            cycles.extend(span)
            if kind == "Y":
                data.extend(columns)
            elif kind == "I":
                index.extend(columns)
            else:
                umis.append(columns)
        if data:
            data_reads.append(data)
        if index:
            index_reads.append(index)
            index_read_info.append(read)
    settings: dict = {}
    create_index = (
        options.create_index_fastqs
        if options.create_index_fastqs is not None
        else bool(sheet and sheet.flag("CreateFastqForIndexReads"))
    )
    outputs = [Output(f"R{n}", cols, n) for n, cols in enumerate(data_reads, start=1)]
    if create_index or options.picard:
        outputs += [Output(f"I{n}", cols, n) for n, cols in enumerate(index_reads, start=1)]
    mismatches = options.barcode_mismatches
    if mismatches is None:
        mismatches = tuple(
            int(sheet.setting(f"BarcodeMismatchesIndex{n}", default="1")) if sheet else 1
            for n in (1, 2)
        )
    if any(not 0 <= m <= 2 for m in mismatches):
        raise ConversionError(f"barcode mismatches {mismatches} must each be 0, 1 or 2")
    rules = adapter_rules(sheet, len(data_reads))
    adapters = {f"R{n}": rule for n, rule in enumerate(rules, start=1) if rule is not None}
    settings.update(
        adapters={key: [a.decode() for a in rule.sequences] for key, rule in adapters.items()},
        adapter_behavior=next((rule.behavior for rule in adapters.values()), None),
        barcode_mismatches=list(mismatches),
        include_non_pf=options.include_non_pf,
        create_index_fastqs=create_index,
        compression_level=options.compression_level,
        picard_rules=asdict(options.picard) if options.picard else None,
        override_cycles=sheet.override_cycles if sheet else None,
    )
    plan = Plan(
        run_folder=run_folder,
        run_info=run_info,
        cycles=cycles,
        outputs=outputs,
        index_columns=index_reads,
        umi_columns=umis,
        lanes={},
        sample_names={},
        include_non_pf=options.include_non_pf,
        level=options.compression_level,
        picard=options.picard,
        adapters=adapters,
        name_prefix=(
            f"@{run_info.instrument}:{options.run_name or run_info.run_number or 0}:"
            f"{run_info.flowcell}:"
        ),
    )
    return plan, {"settings": settings, "index_reads": index_read_info, "mismatches": mismatches}


def lane_barcodes(
    plan: Plan,
    sheet: SampleSheet | None,
    lane: int,
    index_reads,
    mismatches: tuple[int, ...],
    reverse_i5: bool,
) -> tuple[LaneBarcodes, list]:
    samples = sheet.samples_in_lane(lane) if sheet else []
    name = sheet.path if sheet else "SampleSheet.csv"
    if not samples:
        return LaneBarcodes(lane, [], (), ()), []
    used = 0
    if any(s.index for s in samples):
        used = 2 if any(s.index2 for s in samples) else 1
    for sample in samples:
        if used and not sample.index:
            raise ConversionError(f"line {sample.line}: sample has no index but others do", name)
        if used == 2 and not sample.index2:
            raise ConversionError(f"line {sample.line}: sample has no index2 but others do", name)
    if used > len(index_reads):
        raise ConversionError(
            f"line {samples[0].line}: the sheet has {used} indexes, the run "
            f"{len(index_reads)} index reads",
            name,
        )
    if len(samples) > 1 and not used:
        raise ConversionError(
            f"line {samples[1].line}: several samples in lane {lane} and no index", name
        )
    codes = []
    lengths = []
    for slot in range(used):
        read_length = len(plan.index_columns[slot])
        values = [s.index if slot == 0 else s.index2 for s in samples]
        length = len(values[0])
        for sample, value in zip(samples, values, strict=True):
            if len(value) > read_length:
                raise ConversionError(
                    f"line {sample.line}: index{'2' if slot else ''} {value} is {len(value)} "
                    f"bases, the run's index read {slot + 1} has {read_length} cycles",
                    name,
                )
            if len(value) != length:
                raise ConversionError(
                    f"line {sample.line}: index{'2' if slot else ''} {value} is {len(value)} "
                    f"bases where the lane's other samples have {length}",
                    name,
                )
        lengths.append(length)
        if slot == 1 and reverse_i5:
            values = [reverse_complement(v) for v in values]
        codes.append(values)
    barcodes = [tuple(codes[slot][i] for slot in range(used)) for i in range(len(samples))]
    per_index = tuple(mismatches[:used])
    if plan.picard is None:
        check_collisions(
            lane if sheet and sheet.has_lanes else None,
            barcodes,
            [s.line for s in samples],
            per_index,
            name,
        )
    return (
        LaneBarcodes(lane, barcodes, tuple(lengths), per_index, picard=plan.picard),
        samples,
    )


def decide_i5(
    plan: Plan, sheet: SampleSheet | None, index_reads, options: ConvertOptions
) -> tuple[bool, str]:
    """Whether the sheet's index2 must be reverse-complemented to read as the instrument
    read it, and why."""
    if options.i5_orientation == "as-written":
        return False, "as written (set by the operator)"
    if options.i5_orientation == "reverse-complement":
        return True, "reverse-complemented (set by the operator)"
    if not sheet or len(index_reads) < 2 or not any(s.index2 for s in sheet.samples):
        return False, "no i5 index in use"
    if index_reads[1].is_reverse_complement:
        return True, "reverse-complemented: RunInfo.xml marks the i5 read IsReverseComplement=Y"
    # Count exact matches in the first tile both ways; the instrument family breaks ties.
    layout = plan.layout
    assert layout is not None
    lane = next(iter(layout.lanes))
    tile = layout.lanes[lane].tiles[0]
    columns = plan.index_columns[0] + plan.index_columns[1]
    data = layout.read_tile(lane, tile, [plan.cycles[c] for c in columns])
    observed = BASES[data.calls]
    i7_length = len(plan.index_columns[0])
    rows = observed[:20000]
    seen: dict[tuple[int, int], dict[bytes, int]] = {}  # (i7, i5 prefix lengths) → counts

    def count(i7: bytes, i5: bytes) -> int:
        """Clusters whose i7 read starts with i7 and whose i5 read starts with i5."""
        if len(i7) > i7_length or len(i5) > rows.shape[1] - i7_length:
            return 0
        lengths = (len(i7), len(i5))
        if lengths not in seen:
            joined = np.ascontiguousarray(
                np.concatenate(
                    [rows[:, : len(i7)], rows[:, i7_length : i7_length + len(i5)]], axis=1
                )
            )
            keys, counts = np.unique(
                joined.view(np.dtype((np.void, max(joined.shape[1], 1)))).ravel()
                if joined.shape[1]
                else np.zeros(len(joined), np.uint8),
                return_counts=True,
            )
            seen[lengths] = {
                (key.tobytes() if joined.shape[1] else b""): int(n)
                for key, n in zip(keys, counts, strict=True)
            }
        return seen[lengths].get(i7 + i5, 0)

    as_written = forward = 0
    for sample in sheet.samples_in_lane(lane):
        i7 = sample.index.encode()
        as_written += count(i7, sample.index2.encode())
        forward += count(i7, reverse_complement(sample.index2).encode())
    instrument = plan.run_info.instrument
    family_reverses = instrument.upper().startswith(REVERSE_I5_PREFIXES)
    if forward > as_written:
        return True, (
            f"reverse-complemented: {forward} clusters of tile {lane}_{tile} match the sheet's "
            f"i5 reverse-complemented, {as_written} as written"
        )
    if as_written > forward:
        return False, (
            f"as written: {as_written} clusters of tile {lane}_{tile} match the sheet's i5 as "
            f"written, {forward} reverse-complemented"
        )
    return False, (
        f"as written: no clusters of tile {lane}_{tile} decide it; instrument {instrument} "
        f"{'reads i5 reverse-complemented' if family_reverses else 'reads i5 forward'}"
    )
