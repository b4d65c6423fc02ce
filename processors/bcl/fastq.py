"""FASTQ records built a tile at a time with numpy, and gzip members to hold them.

A record is a row of fields: constant text, fixed-width per-cluster bytes (index
bases, the Y/N filter flag, UMIs), decimal numbers (x, y) and variable-length
bytes (trimmed reads). All rows are laid out in one (clusters x widest record)
array; padding is marked and dropped in one pass, so no Python runs per read.

Each tile's text for a file is compressed into one gzip member; members joined
one after the other are a standard gzip file (RFC 1952 §2.2) that `gzip -t`,
zcat and every FASTQ reader accept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from isal import isal_zlib

# BCL byte → base letter and quality character (Phred+33); 0 is a no-call.
BASES = np.frombuffer(b"ACGT", dtype=np.uint8)[np.arange(256) & 3].copy()
BASES[0] = ord("N")
QUALITIES = ((np.arange(256) >> 2) + 33).astype(np.uint8)
QUALITIES[0] = ord("#")
# Picard raises a quality of 0 to 1 (its BclQualityEvaluationStrategy).
PICARD_QUALITIES = (np.maximum(np.arange(256) >> 2, 1) + 33).astype(np.uint8)
PICARD_QUALITIES[0] = ord("#")


@dataclass
class Const:
    text: bytes


@dataclass
class Fixed:
    values: np.ndarray  # clusters x width, uint8


@dataclass
class Number:
    values: np.ndarray  # clusters, non-negative integers


@dataclass
class Variable:
    values: np.ndarray  # clusters x width, uint8
    lengths: np.ndarray  # clusters: how many of the width to keep


def build_records(fields: list, n: int) -> np.ndarray:
    """Join the fields of n records into FASTQ text (a flat uint8 array, so callers
    can slice it without copying; `.tobytes()` gives bytes)."""
    if n == 0:
        return np.zeros(0, dtype=np.uint8)
    widths = []
    for item in fields:
        if isinstance(item, Const):
            widths.append(len(item.text))
        elif isinstance(item, Number):
            top = int(item.values.max()) if len(item.values) else 0
            widths.append(max(len(str(top)), 1))
        else:
            widths.append(item.values.shape[1])
    total = sum(widths)
    out = np.empty((n, total), dtype=np.uint8)
    keep = None
    column = 0
    for item, width in zip(fields, widths, strict=True):
        end = column + width
        if isinstance(item, Const):
            out[:, column:end] = np.frombuffer(item.text, dtype=np.uint8)
        elif isinstance(item, Fixed):
            out[:, column:end] = item.values
        elif isinstance(item, Number):
            values = item.values.astype(np.int64)
            if keep is None:
                keep = np.ones((n, total), dtype=bool)
            for digit in range(width):
                power = 10 ** (width - 1 - digit)
                out[:, column + digit] = (values // power) % 10 + 48
                if digit < width - 1:
                    keep[:, column + digit] = values >= power
        else:
            out[:, column:end] = item.values
            if keep is None:
                keep = np.ones((n, total), dtype=bool)
            keep[:, column:end] = np.arange(width) < item.lengths[:, None]
        column = end
    if keep is None:
        return out.reshape(-1)
    return out[keep]


def gzip_member(data, level: int = 1) -> bytes:
    """One complete gzip member holding data (empty input gives an empty member)."""
    compressor = isal_zlib.compressobj(level, isal_zlib.DEFLATED, 31)
    return compressor.compress(data) + compressor.flush()
