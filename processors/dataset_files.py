"""A dataset's files, produced as streams a storage's `put_stream` stores as
they are made (nothing is written to local disk first).

- `TsvStream`: the gzip TSV, read as it is produced: polars formats a slice of
  genes at a time (floats in shortest round-trip form, so they read back
  exactly: three times as fast as Arrow's CSV writer) while isal compresses the
  slices before on threads of their own. The file is a series of gzip members,
  which every gzip reader reads as one stream.
- `write_parquet` into a `ChunkPipe`: pyarrow's writer on one thread, the
  storage reading the pipe on another.

polars' thread pool does not survive fork(): a process forked from one that
had loaded polars would wait for ever on threads that are not there. Workers
run each job in a forked child and never load polars themselves, but should
the parent have loaded it, the TSV falls back to Arrow's CSV writer (the same
values, a third of the speed) rather than hang.
"""

from __future__ import annotations

import contextlib
import io
import os
import queue
import sys
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor

_forked_with_polars = False


def _note_fork() -> None:
    global _forked_with_polars
    _forked_with_polars = _forked_with_polars or "polars" in sys.modules


os.register_at_fork(after_in_child=_note_fork)

TSV_SLICE_ROWS = 2000  # genes per gzip member: one formats while those before compress
GZIP_LEVEL = 2  # isal: as fast as level 1 here, and a little smaller


class TsvStream(io.RawIOBase):
    """The gzip TSV of `table` (an Arrow table: `gene_id`, then a float64 column
    per sample), with `header` as its first line. `read(n)` gives n bytes until
    the end, as `put_stream` expects. The header is written here, so the polars
    frame's column names are positional (an accession may even be `gene_id`)."""

    def __init__(self, table, header: list[str], threads: int):
        from isal import igzip

        self._compress = igzip.compress
        self._table = table.rename_columns([f"c{n}" for n in range(table.num_columns)])
        if _forked_with_polars:
            self._frame = None
        else:
            import polars as pl

            self._frame = pl.from_arrow(self._table)
        self._slice_rows = TSV_SLICE_ROWS
        self._starts = iter(range(0, table.num_rows, self._slice_rows))
        self._threads = max(1, threads)
        self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="tsv-gzip")
        line = ("\t".join(header) + "\n").encode()
        self._members = deque([self._pool.submit(self._compress, line, GZIP_LEVEL)])
        self._buffer = bytearray()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while (size < 0 or len(self._buffer) < size) and self._next_member():
            pass
        size = len(self._buffer) if size < 0 else size
        with memoryview(self._buffer) as view:
            piece = bytes(view[:size])
        del self._buffer[:size]  # cheap: a bytearray drops a prefix without moving the rest
        return piece

    def _next_member(self) -> bool:
        """Format slices until `threads` of them are compressing, then take the
        oldest one's gzip member; False at the end."""
        while len(self._members) <= self._threads:
            start = next(self._starts, None)
            if start is None:
                break
            text = self._format(start)
            self._members.append(self._pool.submit(self._compress, text.getbuffer(), GZIP_LEVEL))
        if not self._members:
            return False
        self._buffer += self._members.popleft().result()
        return True

    def _format(self, start: int) -> io.BytesIO:
        """TSV lines of the genes from `start`: empty cells for nulls, nothing quoted."""
        text = io.BytesIO()
        if self._frame is not None:
            self._frame.slice(start, self._slice_rows).write_csv(
                text, include_header=False, separator="\t", line_terminator="\n",
                quote_style="never", null_value="",
            )  # fmt: skip
        else:
            import pyarrow.csv as csv

            options = csv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")
            csv.write_csv(self._table.slice(start, self._slice_rows), text, options)
        return text

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)
        super().close()


def write_parquet(table, pipe: ChunkPipe) -> None:
    """One float64 column per sample; zstd at level -1, which here is as small
    as level 1 (within a few percent either way) for a fifth less time, and a
    third smaller than lz4. Dictionaries do not help floats, and cost half the
    writing time. A failure reaches the pipe's reader as an error."""
    import pyarrow.parquet as pq

    try:
        pq.write_table(
            table, pipe, compression="zstd", compression_level=-1, use_dictionary=["gene_id"],
            write_statistics=False,
        )  # fmt: skip
    except BaseException as error:
        with contextlib.suppress(BrokenPipeError):  # the reader stopped first
            pipe.end(error)
        raise
    pipe.end()


def store_from_pipe(storage, pipe: ChunkPipe, key: str):
    """`put_stream` what the pipe brings; if storing fails, the pipe's writer
    is stopped rather than left waiting for a reader."""
    try:
        return storage.put_stream(pipe, key)
    except BaseException:
        pipe.cancel()
        raise


class ChunkPipe(io.RawIOBase):
    """Bytes written by one thread and read by another through a short queue
    of chunks, so memory stays bounded. The writer calls `end()` when done, or
    `end(error)` so that the reader raises rather than take a truncated stream
    for a whole one; `cancel()` makes either side's next call fail instead of
    waiting for ever on a side that stopped."""

    DEPTH = 16  # chunks (pyarrow writes about a page, ~1 MB, at a time)

    def __init__(self):
        self._chunks: queue.Queue = queue.Queue(self.DEPTH)
        self._buffer = bytearray()
        self._written = 0
        self._ended = False
        self._cancelled = threading.Event()

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._written

    def write(self, data) -> int:
        chunk = bytes(data)
        self._put(chunk)
        self._written += len(chunk)
        return len(chunk)

    def end(self, error: BaseException | None = None) -> None:
        self._put(error if error is not None else b"")

    def cancel(self) -> None:
        self._cancelled.set()

    def read(self, size: int = -1) -> bytes:
        while not self._ended and (size < 0 or len(self._buffer) < size):
            item = self._get()
            if isinstance(item, BaseException):
                raise OSError(f"the file could not be written: {item}") from item
            if not item:
                self._ended = True
            self._buffer += item
        size = len(self._buffer) if size < 0 else size
        with memoryview(self._buffer) as view:
            piece = bytes(view[:size])
        del self._buffer[:size]
        return piece

    def _put(self, item) -> None:
        while True:
            if self._cancelled.is_set():
                raise BrokenPipeError("the pipe's reader stopped")
            try:
                return self._chunks.put(item, timeout=0.1)
            except queue.Full:
                continue

    def _get(self):
        while True:
            if self._cancelled.is_set():
                raise BrokenPipeError("the pipe's writer stopped")
            try:
                return self._chunks.get(timeout=0.1)
            except queue.Empty:
                continue
