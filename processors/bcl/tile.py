"""One tile's conversion, in a worker process: read its calls, match its indexes,
lay out each read's FASTQ records sample by sample (the compiled loop, or numpy for
UMIs, adapters and Picard's rules) and compress each sample's share into a gzip
member, into the worker's spool file (or returned), with the tile's figures.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from processors.bcl.adapters import apply_adapters
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
from processors.bcl.native import fastq_records as fastq_native
from processors.bcl.native import keep_freed_memory
from processors.bcl.output import Spool
from processors.bcl.planning import Plan

TOP_UNKNOWN = 100

_PLAN: Plan | None = None


def init_worker(plan: Plan, worker: bool = False) -> None:
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
    observed = np.empty((n, 0), np.uint8)
    if flat_index:
        index_calls = data.columns.cluster_major(cycles=flat_index)
        observed = BASES[index_calls if n == total else index_calls[chosen]]
    samples, distances = barcodes.match(observed)
    sample_count = len(barcodes.barcodes) or 1
    group = np.where(samples < 0, 0, samples + 1)  # 0 = undetermined
    # A stable sort of small integers is a radix sort in numpy: linear in clusters.
    order = np.argsort(group.astype(np.uint16 if sample_count < 65535 else np.int64), kind="stable")
    group_sorted = group[order]
    boundaries = np.searchsorted(group_sorted, np.arange(sample_count + 2))
    rows = chosen[order]  # the tile's rows in output order
    sorted_calls = None  # a copy of the tile in output order, made only for numpy's path
    qualities_table = PICARD_QUALITIES if plan.picard else QUALITIES
    header_index = x = y = flag = None  # in output order, made only for numpy's path
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
        transposer = data.columns.transposer()
        written = transposer and fastq_native(
            transposer,
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
            if x is None:
                x, y = data.x[rows], data.y[rows]
                flag = np.where(data.passed[rows], ord("N"), ord("Y")).astype(np.uint8)[:, None]
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
