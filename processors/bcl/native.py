"""An optional compiled loop for the commonest FASTQ layout, built at first use.

numpy lays out records in several passes over a tile (look-ups, copies, a padding
mask); this C loop writes each record in one pass and counts its Q30 bases and
quality sum on the way. It is compiled with the system's C compiler into a cache
folder the first time a converter needs it; without a compiler (or with
REFINERY_BCL_NATIVE=0) the numpy path in processors.bcl.fastq does the same work,
byte for byte (tests/processors/bcl/test_native.py compares them).

It covers records with no UMI, no adapter trimming and Picard's rules off; the
converter uses numpy for the rest.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

SOURCE = r"""
#include <stdint.h>
#include <string.h>

static const char BASE[4] = {'A', 'C', 'G', 'T'};

static inline int write_number(uint8_t *p, int64_t value) {
    char digits[24];
    int count = 0;
    if (value < 0) value = 0;
    do { digits[count++] = (char)('0' + value % 10); value /= 10; } while (value);
    for (int i = 0; i < count; i++) p[i] = (uint8_t)digits[count - 1 - i];
    return count;
}

int64_t fastq_records(
    const uint8_t *calls, int64_t n, int64_t width,
    int64_t seq_start, int64_t seq_len,
    const uint8_t *prefix, int64_t prefix_len,
    const int64_t *x, const int64_t *y,
    const uint8_t *middle, int64_t middle_len,
    const uint8_t *flag,
    const int64_t *index_starts, const int64_t *index_lens, int64_t index_count,
    uint8_t *out, int64_t *ends, int64_t *q30, int64_t *qsum)
{
    uint8_t *p = out;
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *row = calls + i * width;
        memcpy(p, prefix, (size_t)prefix_len); p += prefix_len;
        p += write_number(p, x[i]);
        *p++ = ':';
        p += write_number(p, y[i]);
        memcpy(p, middle, (size_t)middle_len); p += middle_len;
        *p++ = flag[i]; *p++ = ':'; *p++ = '0'; *p++ = ':';
        for (int64_t k = 0; k < index_count; k++) {
            if (k) *p++ = '+';
            const uint8_t *at = row + index_starts[k];
            for (int64_t j = 0; j < index_lens[k]; j++) {
                uint8_t c = at[j];
                *p++ = c ? (uint8_t)BASE[c & 3] : 'N';
            }
        }
        *p++ = '\n';
        const uint8_t *seq = row + seq_start;
        for (int64_t j = 0; j < seq_len; j++) {
            uint8_t c = seq[j];
            p[j] = c ? (uint8_t)BASE[c & 3] : 'N';
        }
        p += seq_len;
        *p++ = '\n'; *p++ = '+'; *p++ = '\n';
        int64_t good = 0, total = 0;
        for (int64_t j = 0; j < seq_len; j++) {
            uint8_t c = seq[j];
            int q = c ? (c >> 2) : 2;
            p[j] = (uint8_t)(q + 33);
            total += q;
            good += q >= 30;
        }
        p += seq_len;
        *p++ = '\n';
        ends[i] = (int64_t)(p - out);
        q30[i] = good;
        qsum[i] = total;
    }
    return (int64_t)(p - out);
}
"""

_LIBRARY = None
_TRIED = False


def _cache_folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "refinery-bcl"


def library():
    """The compiled loop, or None (no compiler, compile failed, or switched off)."""
    global _LIBRARY, _TRIED
    if _TRIED:
        return _LIBRARY
    _TRIED = True
    if os.environ.get("REFINERY_BCL_NATIVE", "1") == "0":
        return None
    digest = hashlib.sha256(SOURCE.encode()).hexdigest()[:16]
    try:
        folder = _cache_folder()
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"fastq_{digest}.so"
        if not target.exists():
            with tempfile.TemporaryDirectory(dir=folder) as work:
                source = Path(work) / "fastq.c"
                source.write_text(SOURCE)
                built = Path(work) / "fastq.so"
                subprocess.run(
                    ["cc", "-O3", "-shared", "-fPIC", "-o", str(built), str(source)],
                    check=True,
                    capture_output=True,
                    timeout=120,
                )
                os.replace(built, target)  # whole or not at all
        loaded = ctypes.CDLL(str(target))
    except (OSError, subprocess.SubprocessError):
        return None
    function = loaded.fastq_records
    function.restype = ctypes.c_int64
    function.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64]
    function.argtypes += [ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
    function.argtypes += [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
    function.argtypes += [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
    function.argtypes += [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    _LIBRARY = function
    return _LIBRARY


def fastq_records(
    calls: np.ndarray,
    seq: slice,
    prefix: bytes,
    x: np.ndarray,
    y: np.ndarray,
    middle: bytes,
    flag: np.ndarray,
    index_spans: list[slice],
):
    """(text, record ends, Q30 bases per record, quality sum per record), or None
    when the compiled loop is not available."""
    function = library()
    if function is None:
        return None
    calls = np.ascontiguousarray(calls, dtype=np.uint8)
    n, width = calls.shape
    seq_len = seq.stop - seq.start
    index_len = sum(s.stop - s.start for s in index_spans) + max(len(index_spans) - 1, 0)
    record = len(prefix) + 2 * 20 + 1 + len(middle) + 4 + index_len + 1 + 2 * seq_len + 4
    out = np.empty(max(n * record, 1), dtype=np.uint8)
    ends = np.empty(n, dtype=np.int64)
    q30 = np.empty(n, dtype=np.int64)
    qsum = np.empty(n, dtype=np.int64)
    x = np.ascontiguousarray(x, dtype=np.int64)
    y = np.ascontiguousarray(y, dtype=np.int64)
    flag = np.ascontiguousarray(flag, dtype=np.uint8).reshape(-1)
    starts = np.array([s.start for s in index_spans] or [0], dtype=np.int64)
    lengths = np.array([s.stop - s.start for s in index_spans] or [0], dtype=np.int64)
    prefix_buffer = np.frombuffer(prefix, dtype=np.uint8)
    middle_buffer = np.frombuffer(middle, dtype=np.uint8)
    total = function(
        calls.ctypes.data, n, width, seq.start, seq_len,
        prefix_buffer.ctypes.data, len(prefix), x.ctypes.data, y.ctypes.data,
        middle_buffer.ctypes.data, len(middle), flag.ctypes.data,
        starts.ctypes.data, lengths.ctypes.data, len(index_spans),
        out.ctypes.data, ends.ctypes.data, q30.ctypes.data, qsum.ctypes.data,
    )  # fmt: skip
    return out[:total], ends, q30, qsum
