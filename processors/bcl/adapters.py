"""Adapter trimming and masking, as the sample sheet asks (bcl2fastq's `Adapter`,
`AdapterRead2`, `MaskAdapter…`; BCL Convert's `AdapterRead1`, `AdapterRead2`,
`AdapterBehavior`, `AdapterStringency`, `MinimumAdapterOverlap`,
`MinimumTrimmedReadLength`, `MaskShortReads`).

An adapter starts at the first position p of a read where the read from p on
matches the adapter's beginning over the overlap (at least `min_overlap` bases,
partial adapters at the read's end included) with at most
floor((1 - stringency) x overlap) mismatches, a no-call counting as one. The
read is trimmed to p (or its bases from p on are masked with N); a read trimmed
below `min_length` keeps `min_length` bases with the adapter part masked, and one
trimmed below `mask_short` is masked entirely.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AdapterRule:
    sequences: tuple[bytes, ...]
    behavior: str = "trim"  # or "mask"
    stringency: float = 0.9
    min_overlap: int = 1
    min_length: int = 35
    mask_short: int = 22


def adapter_starts(seq: np.ndarray, adapter: bytes, stringency: float, min_overlap: int):
    """For an (n x L) array of bases, where each read's adapter starts (L: none)."""
    n, length = seq.shape
    starts = np.full(n, length, dtype=np.int64)
    wanted = np.frombuffer(adapter, dtype=np.uint8)
    for position in range(length):
        overlap = min(len(wanted), length - position)
        if overlap < max(min_overlap, 1):
            break
        open_rows = starts == length
        if not open_rows.any():
            break
        window = seq[:, position : position + overlap]
        mismatches = (window != wanted[:overlap]).sum(axis=1)
        allowed = int((1 - stringency) * overlap + 1e-9)
        starts[open_rows & (mismatches <= allowed)] = position
    return starts


def apply_adapters(seq: np.ndarray, qual: np.ndarray, rule: AdapterRule):
    """(bases, qualities, lengths) after trimming or masking; lengths is None when
    every read keeps its full length."""
    n, length = seq.shape
    starts = np.full(n, length, dtype=np.int64)
    for adapter in rule.sequences:
        starts = np.minimum(starts, adapter_starts(seq, adapter, rule.stringency, rule.min_overlap))
    if (starts == length).all():
        return seq, qual, None
    seq = seq.copy()
    qual = qual.copy()
    columns = np.arange(length)
    if rule.behavior == "mask":
        masked = columns >= starts[:, None]
        keep_length = np.full(n, length, dtype=np.int64)
    else:
        keep_length = np.maximum(starts, min(rule.min_length, length))
        masked = (columns >= starts[:, None]) & (columns < keep_length[:, None])
    masked |= (starts < rule.mask_short)[:, None] & (columns < keep_length[:, None])
    seq[masked] = ord("N")
    qual[masked] = ord("#")
    if rule.behavior == "mask":
        return seq, qual, None
    return seq, qual, keep_length


def adapter_rules(sheet, data_reads: int) -> list[AdapterRule | None]:
    """One rule (or None) per data read, from the sheet's settings."""
    if sheet is None:
        return [None] * data_reads
    if sheet.version == 2:
        names = [("AdapterRead1",), ("AdapterRead2",)]
        mask = sheet.setting("AdapterBehavior", default="trim").lower() == "mask"
        masks = [mask, mask]
    else:
        names = [("Adapter", "AdapterRead1"), ("AdapterRead2", "Adapter")]
        masks = [
            sheet.flag("MaskAdapter"),
            sheet.flag("MaskAdapterRead2") or sheet.flag("MaskAdapter"),
        ]
    stringency = float(sheet.setting("AdapterStringency", default="0.9"))
    overlap = int(sheet.setting("MinimumAdapterOverlap", default="1"))
    min_length = int(sheet.setting("MinimumTrimmedReadLength", default="35"))
    mask_short = int(sheet.setting("MaskShortReads", "MaskShortAdapterReads", default="22"))
    rules: list[AdapterRule | None] = []
    for read in range(data_reads):
        if read >= 2:
            rules.append(None)
            continue
        text = sheet.setting(*names[read])
        sequences = tuple(
            part.strip().upper().encode() for part in text.replace(";", "+").split("+") if part
        )
        if not sequences:
            rules.append(None)
            continue
        rules.append(
            AdapterRule(
                sequences,
                "mask" if masks[read] else "trim",
                stringency,
                overlap,
                min_length,
                min(mask_short, min_length),
            )
        )
    return rules
