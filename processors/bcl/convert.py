"""`convert_run`: a run folder's base calls → demultiplexed, gzipped FASTQ and BCL
Convert's reports.

The work goes tile by tile: a worker reads one tile (every cycle the output needs),
matches its indexes, lays out its FASTQ records and compresses each output file's
share into a gzip member; the parent appends the members to the files in tile order.
Memory follows the clusters of one tile per worker, never the number of tiles.

Everything is written into a hidden folder inside the output folder and moved into
place only when every tile has been converted, so a crash or a refusal leaves no
file that looks finished.

Command line (also what bench/demultiplex.py runs):

    python -m processors.bcl.convert RUN_FOLDER OUTPUT_FOLDER [--sample-sheet CSV]
        [--threads N] [--barcode-mismatches 1] [--include-non-pf] ...
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from collections import Counter, deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from common.illumina.run_info import RunInfo, RunInfoError, read_run_info
from common.progress import Progress
from processors.bcl import reports
from processors.bcl.adapters import AdapterRule, adapter_rules, apply_adapters
from processors.bcl.barcodes import LaneBarcodes, PicardRules, check_collisions, reverse_complement
from processors.bcl.errors import ConversionError
from processors.bcl.fastq import (
    BASES,
    PICARD_QUALITIES,
    QUALITIES,
    Const,
    Fixed,
    Number,
    Variable,
    build_records,
    gzip_member,
)
from processors.bcl.layout import RunLayout
from processors.bcl.native import fastq_records as fastq_native
from processors.bcl.native import keep_freed_memory, release_scratch
from processors.bcl.native import library as native_library
from processors.bcl.output import OutputFiles, Spool
from processors.bcl.sample_sheet import SampleSheet, parse_override_cycles, read_sample_sheet

ENGINE = "refinery-builtin"
ENGINE_VERSION = "1.0"
TOP_UNKNOWN = 100
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
class ConversionReport:
    engine: str
    engine_version: str
    run_id: str
    flowcell: str
    instrument: str
    formats: dict
    read_structure: list[dict]
    settings: dict
    i5_orientation: str
    i5_reason: str
    clusters: int = 0
    clusters_pf: int = 0
    clusters_written: int = 0
    undetermined: int = 0
    lane_totals: dict[int, int] = field(default_factory=dict)
    samples: list[dict] = field(default_factory=list)
    top_unknown: list[dict] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------ the plan


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


def _read_segments(run_info: RunInfo, sheet: SampleSheet | None) -> list[list[tuple[str, int]]]:
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
    segments = _read_segments(run_info, sheet)
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


def _lane_barcodes(
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


def _decide_i5(
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


# ------------------------------------------------------------------ per tile

_PLAN: Plan | None = None


def _init_worker(plan: Plan, worker: bool = False) -> None:
    global _PLAN
    _PLAN = plan
    if worker:
        keep_freed_memory()


def _eamss(bases: np.ndarray, qualities: np.ndarray) -> None:
    """Picard's EAMSS: find where quality collapses towards the end of a read (a
    tally from the end, +1 below Q15, -2 at Q30 and above) and set everything from
    there on to Q2, reaching back over a preceding run of G's. In place, per read."""
    length = bases.shape[1]
    for row in range(bases.shape[0]):
        q = qualities[row]
        b = bases[row]
        tally, best, at = 0, -(1 << 30), -1
        for i in range(length - 1, -1, -1):
            value = int(q[i])
            if value >= 30:
                tally -= 2
            elif value < 15:
                tally += 1
            if tally >= best:
                best, at = tally, i
        if best < 1:
            continue
        gs = exceptions = 0
        i = at
        while i >= 0:
            if b[i] == 71:  # G
                gs += 1
            else:
                skip = None
                for backup in range(1, i + 1):
                    limit = max((gs + backup) // 10, 1)
                    if exceptions + backup > limit:
                        break
                    if b[i - backup] == 71:
                        skip = backup
                        break
                if skip is None:
                    break
                exceptions += skip
                gs += skip
                i -= skip - 1
            i -= 1
        if gs >= 10:
            at = at + 1 - gs
        q[at:] = 2


def convert_tile(lane: int, tile: int) -> dict:
    plan = _PLAN
    assert plan is not None and plan.layout is not None
    data = plan.layout.read_tile(lane, tile, plan.cycles, reuse=True)
    total = len(data.passed)
    pf = int(data.passed.sum())
    everything = np.arange(len(data.passed))
    chosen = everything if plan.include_non_pf else np.flatnonzero(data.passed)
    n = len(chosen)
    barcodes = plan.lanes[lane]
    index_columns = [
        cols[:length] for cols, length in zip(plan.index_columns, barcodes.lengths, strict=False)
    ]
    flat_index = [c for cols in index_columns for c in cols]
    observed = (
        BASES[data.calls[:, flat_index][chosen]] if flat_index else np.empty((n, 0), np.uint8)
    )
    samples, distances = barcodes.match(observed)
    sample_count = len(barcodes.barcodes) or 1
    group = np.where(samples < 0, 0, samples + 1)  # 0 = undetermined
    # A stable sort of small integers is a radix sort in numpy: linear in clusters.
    order = np.argsort(group.astype(np.uint16 if sample_count < 65535 else np.int64), kind="stable")
    group_sorted = group[order]
    boundaries = np.searchsorted(group_sorted, np.arange(sample_count + 2))
    rows = chosen[order]  # the tile's rows in output order
    sorted_calls = None  # a copy of the tile in output order, made only for numpy's path
    passed = data.passed[rows]

    qualities_table = PICARD_QUALITIES if plan.picard else QUALITIES
    x = data.x[rows]
    y = data.y[rows]
    flag = np.where(passed, ord("N"), ord("Y")).astype(np.uint8)[:, None]
    header_index = None  # laid out only when numpy writes the records
    umi = None
    if plan.umi_columns:
        sorted_calls = data.calls[rows]
        parts = []
        for position, cols in enumerate(plan.umi_columns):
            if position:
                parts.append(np.full((n, 1), ord("+"), np.uint8))
            parts.append(BASES[sorted_calls[:, _span(cols)]])
        umi = np.concatenate(parts, axis=1)

    # (sample index, member) per read; (sample index, offset, length) with a spool.
    members: dict[str, list[tuple]] = {}
    spool = Spool(plan.spool / f"{lane}_{tile}.gz") if plan.spool else None
    read_metrics = {}
    prefix = f"{plan.name_prefix}{lane}:{tile}:".encode()
    per_group = np.bincount(group_sorted, minlength=sample_count + 1)
    index_spans = [_span(cols) for cols in plan.index_columns]
    compiled: dict[str, tuple] = {}
    if plan.picard is None and umi is None and index_spans:
        # Every read the compiled loop can write, in one pass over the tile's rows.
        simple = [
            output
            for output in plan.outputs
            if output.key not in plan.adapters
            and isinstance(_span(output.cycles), slice)
            and all(isinstance(s, slice) for s in index_spans)
        ]
        # In the tile's own order, each record placed with its sample's: the tile's
        # rows are read in order, not gathered in output order.
        written = fastq_native(
            data.calls,
            [(_span(o.cycles), f" {o.read_number}:".encode()) for o in simple],
            prefix, data.x[chosen], data.y[chosen],
            np.where(data.passed[chosen], ord("N"), ord("Y")).astype(np.uint8),
            index_spans, rows=chosen, group=group, groups=sample_count + 1, reuse=True,
        )  # fmt: skip
        if written is not None:
            compiled = dict(zip([o.key for o in simple], written, strict=True))
    for output in plan.outputs:
        span = _span(output.cycles)
        read_number = "" if plan.picard and output.key.startswith("I") else output.read_number
        rule = plan.adapters.get(output.key)
        lengths = None
        native = compiled.pop(output.key, None)
        if native is not None:
            text, group_offsets, row_q30, row_sum = native
            row_groups = group  # the compiled loop's figures are in the tile's order
        else:
            row_groups = group_sorted
            if sorted_calls is None:
                sorted_calls = data.calls[rows]
            seq = BASES[sorted_calls[:, span]]
            qual = qualities_table[sorted_calls[:, span]]
            if header_index is None:
                header_index = _header_index(plan, sorted_calls, samples[order], lane)
            if plan.picard:
                seq = seq.copy()
                quality_values = (qual - 33).astype(np.uint8)
                _eamss(seq, quality_values)
                qual = quality_values + 33
            if rule is not None:
                seq, qual, lengths = apply_adapters(seq, qual, rule)
            fields = [Const(prefix), Number(x), Const(b":"), Number(y)]
            if umi is not None:
                fields += [Const(b":"), Fixed(umi)]
            fields += [Const(f" {read_number}:".encode()), Fixed(flag), Const(b":0:")]
            if lengths is None:
                fields += [header_index, Const(b"\n"), Fixed(seq), Const(b"\n+\n"), Fixed(qual)]
            else:
                fields += [header_index, Const(b"\n"), Variable(seq, lengths)]
                fields += [Const(b"\n+\n"), Variable(qual, lengths)]
            fields.append(Const(b"\n"))
            text = build_records(fields, n)
            offsets = np.concatenate([[0], np.cumsum(_record_lengths(fields, n))])
            group_offsets = offsets[boundaries]
        for g in range(sample_count + 1):
            start, end = group_offsets[g], group_offsets[g + 1]
            if end > start:
                member = gzip_member(text[start:end], plan.level)
                where = spool.add(member) if spool else (member,)
                members.setdefault(output.key, []).append((g - 1, *where))
        # Per-sample yield, Q30 and quality sums for this read (from the Phred+33 text).
        length = len(output.cycles)
        if native is not None:
            per_row_q30, per_row_sum = row_q30, row_sum
        else:
            per_row_q30 = (qual >= 63).sum(axis=1)
            per_row_sum = qual.sum(axis=1, dtype=np.int64) - 33 * length
        if lengths is None:
            yields = per_group * length
        else:  # trimmed reads: only the bases kept count
            beyond = np.arange(length) >= lengths[:, None]
            per_row_q30 = per_row_q30 - ((qual >= 63) & beyond).sum(axis=1)
            per_row_sum = per_row_sum - ((qual.astype(np.int64) - 33) * beyond).sum(axis=1)
            yields = np.bincount(group_sorted, weights=lengths, minlength=sample_count + 1)
        read_metrics[output.key] = (
            yields,
            np.bincount(row_groups, weights=per_row_q30, minlength=sample_count + 1),
            np.bincount(row_groups, weights=per_row_sum, minlength=sample_count + 1),
        )
    counts = np.bincount(group, minlength=sample_count + 1)
    perfect = np.bincount(group[distances == 0], minlength=sample_count + 1)
    one = np.bincount(group[distances == 1], minlength=sample_count + 1)
    two = np.bincount(group[distances == 2], minlength=sample_count + 1)
    unknown = Counter()
    if flat_index and counts[0]:
        rows = np.ascontiguousarray(observed[samples < 0])
        keys, key_counts = np.unique(
            rows.view(np.dtype((np.void, rows.shape[1]))).ravel(), return_counts=True
        )
        top = np.argsort(-key_counts, kind="stable")[: TOP_UNKNOWN * 10]
        unknown = Counter({keys[i].tobytes(): int(key_counts[i]) for i in top})
    if spool:
        spool.close()
    return {
        "lane": lane,
        "tile": tile,
        "members": members,
        "spool": spool.path if spool else None,
        "clusters": total,
        "pf": pf,
        "written": n,
        "counts": counts,
        "perfect": perfect,
        "one": one,
        "two": two,
        "read_metrics": read_metrics,
        "unknown": unknown,
    }


def _span(columns: list[int]):
    """A slice when the columns are consecutive (a view, no copy), else the list."""
    if columns and columns == list(range(columns[0], columns[-1] + 1)):
        return slice(columns[0], columns[-1] + 1)
    return columns


def _header_index(plan: Plan, calls_sorted: np.ndarray, samples_sorted, lane: int):
    """The read name's last field: the index bases as read (i7+i5), or for Picard the
    matched sample's barcode (nothing when unmatched)."""
    n = len(calls_sorted)
    barcodes = plan.lanes[lane]
    if plan.picard:
        joined = ["".join(codes).replace("N", ".") for codes in barcodes.barcodes]
        width = max((len(j) for j in joined), default=0)
        table = np.zeros((len(joined) + 1, max(width, 1)), np.uint8)
        lengths_table = np.zeros(len(joined) + 1, np.int64)
        for position, code in enumerate(joined, start=1):
            table[position, : len(code)] = np.frombuffer(code.encode(), np.uint8)
            lengths_table[position] = len(code)
        picks = np.where(samples_sorted < 0, 0, samples_sorted + 1)
        return Variable(table[picks], lengths_table[picks])
    if not plan.index_columns:
        return Fixed(np.full((n, 1), ord("1"), np.uint8))
    parts = []
    for position, cols in enumerate(plan.index_columns):
        if position:
            parts.append(np.full((n, 1), ord("+"), np.uint8))
        parts.append(BASES[calls_sorted[:, _span(cols)]])
    return Fixed(np.concatenate(parts, axis=1))


def _record_lengths(fields: list, n: int) -> np.ndarray:
    lengths = np.zeros(n, dtype=np.int64)
    for item in fields:
        if isinstance(item, Const):
            lengths += len(item.text)
        elif isinstance(item, Fixed):
            lengths += item.values.shape[1]
        elif isinstance(item, Number):
            values = item.values.astype(np.int64)
            lengths += 1
            power = 10
            top = int(values.max()) if n else 0
            while power <= top:
                lengths += values >= power
                power *= 10
        else:
            lengths += item.lengths
    return lengths


# ------------------------------------------------------------------ the run


def convert_run(
    run_folder: Path,
    output_dir: Path,
    sample_sheet: Path | None = None,
    options: ConvertOptions | None = None,
) -> ConversionReport:
    """Convert a run folder into demultiplexed FASTQ under output_dir.

    Raises ConversionError (naming the file or sample-sheet line) for input that
    cannot be converted; then nothing new is left in output_dir.
    """
    started = time.monotonic()
    options = options or ConvertOptions()
    run_folder = Path(run_folder)
    output_dir = Path(output_dir)
    if sample_sheet is None and (run_folder / "SampleSheet.csv").exists():
        sample_sheet = run_folder / "SampleSheet.csv"
    sheet = read_sample_sheet(Path(sample_sheet)) if sample_sheet else None
    plan, extra = make_plan(run_folder, sheet, options)
    run_info = plan.run_info
    plan.layout = RunLayout(run_folder, run_info.lane_count, run_info.tiles)
    reverse_i5, reason = _decide_i5(plan, sheet, extra["index_reads"], options)
    lane_samples = {}
    for lane in plan.layout.lanes:
        barcodes, samples = _lane_barcodes(
            plan, sheet, lane, extra["index_reads"], extra["mismatches"], reverse_i5
        )
        plan.lanes[lane] = barcodes
        lane_samples[lane] = samples
    no_lane_split = (
        options.no_lane_splitting
        if options.no_lane_splitting is not None
        else bool(sheet and sheet.flag("NoLaneSplitting"))
    )
    report = ConversionReport(
        engine=ENGINE,
        engine_version=ENGINE_VERSION,
        run_id=run_info.run_id,
        flowcell=run_info.flowcell,
        instrument=run_info.instrument,
        formats=plan.layout.describe(),
        read_structure=run_info.read_structure(),
        settings={**extra["settings"], "no_lane_splitting": no_lane_split},
        i5_orientation="reverse-complement" if reverse_i5 else "as-written",
        i5_reason=reason,
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".bcl-convert-", dir=output_dir))
    try:
        _convert_tiles(plan, sheet, lane_samples, staging, report, options, no_lane_split)
        report.seconds = round(time.monotonic() - started, 3)
        _write_reports(staging, report)
        _publish(staging, output_dir, report)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return report


def _file_name(sample, lane: int, key: str, version: int, no_lane_split: bool) -> str:
    lane_part = "" if no_lane_split else f"_L{lane:03d}"
    if sample is None:
        return f"Undetermined_S0{lane_part}_{key}_001.fastq.gz"
    stem = sample.sample_id if version == 2 else sample.name
    name = f"{stem}_S{sample.number}{lane_part}_{key}_001.fastq.gz"
    return f"{sample.project}/{name}" if sample.project else name


def _convert_tiles(plan, sheet, lane_samples, staging, report, options, no_lane_split) -> None:
    jobs = [(lane, tile) for lane, layout in plan.layout.lanes.items() for tile in layout.tiles]
    if options.tiles is not None:
        wanted = set(options.tiles)
        jobs = [(lane, tile) for lane, tile in jobs if f"{lane}_{tile}" in wanted]
        if not jobs:
            raise ConversionError(f"none of the tiles {sorted(wanted)[:5]} is in the run")
    threads = options.threads or os.cpu_count() or 1
    version = sheet.version if sheet else 2
    totals: dict[tuple[int, int], dict] = {}
    read_totals: dict[tuple[int, int, str], list[float]] = {}
    unknown: dict[int, Counter] = {}
    expected: set[str] = set()
    for lane, samples in lane_samples.items():
        for output in plan.outputs:
            expected.add(_file_name(None, lane, output.key, version, no_lane_split))
            for sample in samples:
                expected.add(_file_name(sample, lane, output.key, version, no_lane_split))

    files = OutputFiles()
    paths: dict[tuple[int, str, int], Path] = {}

    def take(result: dict) -> None:
        lane = result["lane"]
        samples = lane_samples[lane]
        spool = result["spool"]
        source = os.open(spool, os.O_RDONLY) if spool else None
        try:
            for key, members in result["members"].items():
                for sample_index, *member in members:
                    path = paths.get((lane, key, sample_index))
                    if path is None:
                        sample = samples[sample_index] if sample_index >= 0 and samples else None
                        path = staging / _file_name(sample, lane, key, version, no_lane_split)
                        paths[(lane, key, sample_index)] = path
                    if source is None:
                        files.append(path, member[0])
                    else:
                        files.copy(path, source, *member)
        finally:
            if source is not None:
                os.close(source)
                os.unlink(spool)
        report.clusters += result["clusters"]
        report.clusters_pf += result["pf"]
        report.clusters_written += result["written"]
        report.lane_totals[lane] = report.lane_totals.get(lane, 0) + result["written"]
        for g in range(len(result["counts"])):
            entry = totals.setdefault(
                (lane, g), {"reads": 0, "perfect": 0, "one_mismatch": 0, "two_mismatch": 0}
            )
            entry["reads"] += int(result["counts"][g])
            entry["perfect"] += int(result["perfect"][g])
            entry["one_mismatch"] += int(result["one"][g])
            entry["two_mismatch"] += int(result["two"][g])
            for key, (yields, q30, qsum) in result["read_metrics"].items():
                figures = read_totals.setdefault((lane, g, key), [0, 0, 0])
                figures[0] += int(yields[g])
                figures[1] += int(q30[g])
                figures[2] += int(qsum[g])
        bucket = unknown.setdefault(lane, Counter())
        bucket.update(result["unknown"])
        if len(bucket) > TOP_UNKNOWN * 100:
            unknown[lane] = Counter(dict(bucket.most_common(TOP_UNKNOWN * 10)))

    try:
        _run_jobs(plan, jobs, threads, take, options, staging)
    finally:
        files.close()
    empty = gzip_member(b"", plan.level)
    for name in expected:
        path = staging / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(empty)
    _fill_report(plan, lane_samples, totals, read_totals, unknown, report)


def _run_jobs(
    plan: Plan, jobs: list, threads: int, take, options: ConvertOptions, staging: Path
) -> None:
    """Convert the tiles, in worker processes when there are several threads; hand
    each result to take() in tile order (at most two tiles per worker in flight).
    Workers leave their tiles' gzip members in spool files in the staging folder."""
    done = 0
    if threads <= 1 or len(jobs) <= 1:
        _init_worker(plan)
        try:
            for lane, tile in jobs:
                take(convert_tile(lane, tile))
                done += 1
                if options.progress:
                    options.progress(done, len(jobs))
        finally:
            release_scratch()  # this is the caller's process: give the buffers back
    else:
        native_library()  # compiled (or found) once, here: the forked workers inherit it
        plan.spool = staging / ".tiles"
        plan.spool.mkdir()
        # Forked workers share the parent's memory until they write to it; a full
        # garbage collection in a worker would touch (and so copy) every object the
        # parent has. Frozen objects are left alone by the collector.
        gc.freeze()
        try:
            _run_pool(plan, jobs, threads, take, options)
        finally:
            gc.unfreeze()
        plan.spool.rmdir()  # every tile's spool was copied out and removed
        plan.spool = None


def _run_pool(plan: Plan, jobs: list, threads: int, take, options: ConvertOptions) -> None:
    """The tiles in forked worker processes, results handed to take() in tile order."""
    done = 0
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(
        max_workers=threads, mp_context=context, initializer=_init_worker, initargs=(plan, True)
    ) as pool:
        pending: deque = deque()
        queue = iter(jobs)
        for job in queue:
            pending.append(pool.submit(convert_tile, *job))
            if len(pending) >= threads * 2:
                break
        while pending:
            result = pending.popleft().result()
            for job in queue:
                pending.append(pool.submit(convert_tile, *job))
                break
            take(result)
            done += 1
            if options.progress:
                options.progress(done, len(jobs))


def _fill_report(plan, lane_samples, totals, read_totals, unknown, report) -> None:
    index_reads = len(plan.index_columns)
    for lane, samples in lane_samples.items():
        rows = [(None, 0)] + [(s, i + 1) for i, s in enumerate(samples)]
        for sample, g in rows[1:] + rows[:1]:
            figures = totals.get(
                (lane, g), {"reads": 0, "perfect": 0, "one_mismatch": 0, "two_mismatch": 0}
            )
            codes = plan.lanes[lane].barcodes[g - 1] if sample and plan.lanes[lane].lengths else ()
            i7 = sample.index if sample else ""
            i5 = sample.index2 if sample else ""
            read_metrics = []
            for output in plan.outputs:
                yields, q30, qsum = read_totals.get((lane, g, output.key), [0, 0, 0])
                read_metrics.append(
                    {
                        "read": output.key[1:] if output.key[0] == "R" else output.key,
                        "yield": yields,
                        "yield_q30": q30,
                        "quality_sum": qsum,
                    }
                )
            report.samples.append(
                {
                    "lane": lane,
                    "sample_id": sample.sample_id if sample else "Undetermined",
                    "sample_number": sample.number if sample else 0,
                    "project": sample.project if sample else "",
                    "index": "-".join(x for x in (i7, i5) if x),
                    "index_i7": i7,
                    "index_i5": i5,
                    "matched_as": list(codes),
                    **figures,
                    "read_metrics": read_metrics,
                }
            )
            if sample is None:
                report.undetermined += figures["reads"]
        lengths = plan.lanes[lane].lengths
        for key, count in unknown.get(lane, Counter()).most_common(TOP_UNKNOWN):
            text = key.decode()
            i7 = text[: lengths[0]] if lengths else text
            i5 = text[lengths[0] :] if len(lengths) > 1 else ""
            report.top_unknown.append({"lane": lane, "index": i7, "index2": i5, "reads": count})
    report.settings["index_reads"] = index_reads


def _write_reports(staging: Path, report: ConversionReport) -> None:
    folder = staging / "Reports"
    folder.mkdir(exist_ok=True)
    lane_unknown = {row["lane"]: row["reads"] for row in report.samples if not row["sample_number"]}
    (folder / "Demultiplex_Stats.csv").write_text(
        reports.demultiplex_stats_csv(report.samples, report.lane_totals)
    )
    (folder / "Quality_Metrics.csv").write_text(reports.quality_metrics_csv(report.samples))
    (folder / "Top_Unknown_Barcodes.csv").write_text(
        reports.top_unknown_csv(report.top_unknown, report.lane_totals, lane_unknown)
    )


def _publish(staging: Path, output_dir: Path, report: ConversionReport) -> None:
    """Move every finished file from the staging folder to its place, FASTQs first and
    the reports last (a reader that sees the reports sees every FASTQ)."""
    files = sorted(p for p in staging.rglob("*") if p.is_file())
    files.sort(key=lambda p: p.parts[len(staging.parts)] == "Reports")
    for path in files:
        relative = path.relative_to(staging)
        target = output_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
        if relative.parts[0] != "Reports":
            report.files.append(str(relative))


# ------------------------------------------------------------------ command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m processors.bcl.convert",
        description="Convert an Illumina run folder's base calls into demultiplexed "
        "FASTQ (the built-in engine of the bcl2fastq pipeline).",
    )
    parser.add_argument("run_folder", type=Path)
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("--sample-sheet", type=Path, help="default: RUN_FOLDER/SampleSheet.csv")
    parser.add_argument("--threads", type=int, default=0, help="worker processes (0: all cores)")
    parser.add_argument(
        "--barcode-mismatches",
        type=int,
        choices=(0, 1, 2),
        help="mismatches allowed per index (default: the sheet's, else 1)",
    )
    parser.add_argument("--include-non-pf", action="store_true", help="also write non-PF reads")
    parser.add_argument(
        "--i5-orientation", choices=("auto", "as-written", "reverse-complement"), default="auto"
    )
    parser.add_argument("--create-index-fastqs", action="store_true", default=None)
    parser.add_argument("--no-lane-splitting", action="store_true", default=None)
    parser.add_argument("--compression-level", type=int, choices=(0, 1, 2, 3), default=1)
    parser.add_argument("--tiles", help="only these tiles, e.g. 1_1101,1_1102")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    options = ConvertOptions(
        barcode_mismatches=(args.barcode_mismatches,) * 2
        if args.barcode_mismatches is not None
        else None,
        include_non_pf=args.include_non_pf,
        threads=args.threads,
        compression_level=args.compression_level,
        i5_orientation=args.i5_orientation,
        create_index_fastqs=args.create_index_fastqs,
        no_lane_splitting=args.no_lane_splitting,
        tiles=args.tiles.split(",") if args.tiles else None,
    )
    with Progress(None, "tiles") as bar:
        options.progress = lambda done, total: (setattr(bar.bar, "total", total), bar.advance())
        try:
            report = convert_run(args.run_folder, args.output_dir, args.sample_sheet, options)
        except ConversionError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    if args.json:
        import json

        print(json.dumps(report.as_dict(), indent=1, default=str))
    else:
        print(
            f"{report.clusters_written} clusters written ({report.undetermined} undetermined) "
            f"in {len(report.files)} files, {report.seconds:.2f} s; i5 {report.i5_reason}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
