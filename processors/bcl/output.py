"""Writing the converter's output: FASTQ files appended a tile's gzip members at a
time, with a bounded number of files open.

A worker process writes a tile's members one after the other into a spool file and
hands back only where each lies; the parent copies those ranges onto the ends of
the FASTQ files with `copy_file_range` (inside the kernel, no copy through Python
and nothing pickled between processes), in tile order.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

MAX_OPEN = 500  # stay well under the open-file limit


class Spool:
    """One tile's gzip members, written one after the other into one file."""

    def __init__(self, path: Path):
        self.path = path
        self._stream = path.open("wb")
        self._at = 0

    def add(self, member: bytes) -> tuple[int, int]:
        """Write member; (offset, length) where it lies in the spool."""
        self._stream.write(member)
        start = self._at
        self._at += len(member)
        return start, len(member)

    def close(self) -> None:
        self._stream.close()


class OutputFiles:
    """Files that grow at their ends, the least recently used closed past MAX_OPEN."""

    def __init__(self) -> None:
        self._open: dict[Path, int] = {}  # path → descriptor, most recently used last
        self._sizes: dict[Path, int] = {}

    def _descriptor(self, path: Path) -> int:
        fd = self._open.pop(path, None)
        if fd is None:
            if len(self._open) >= MAX_OPEN:
                os.close(self._open.pop(next(iter(self._open))))
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o666)
            self._sizes.setdefault(path, 0)
        self._open[path] = fd
        return fd

    def append(self, path: Path, data) -> None:
        fd = self._descriptor(path)
        view = memoryview(data)
        while view:
            written = os.pwrite(fd, view, self._sizes[path])
            self._sizes[path] += written
            view = view[written:]

    def copy(self, path: Path, source: int, offset: int, length: int) -> None:
        """Append length bytes of the open file source, from offset."""
        fd = self._descriptor(path)
        while length:
            try:
                copied = os.copy_file_range(
                    source, fd, length, offset_src=offset, offset_dst=self._sizes[path]
                )
            except OSError as error:
                if error.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                    raise
                copied = 0
            if not copied:  # not supported here (or nothing copied): through memory
                self.append(path, os.pread(source, length, offset))
                return
            self._sizes[path] += copied
            offset += copied
            length -= copied

    def close(self) -> None:
        for fd in self._open.values():
            os.close(fd)
        self._open.clear()
