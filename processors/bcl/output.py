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
from typing import TYPE_CHECKING

from processors.bcl import reports

if TYPE_CHECKING:
    from processors.bcl.convert import ConversionReport

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


def file_name(sample, lane: int, key: str, version: int, no_lane_split: bool) -> str:
    lane_part = "" if no_lane_split else f"_L{lane:03d}"
    if sample is None:
        return f"Undetermined_S0{lane_part}_{key}_001.fastq.gz"
    stem = sample.sample_id if version == 2 else sample.name
    name = f"{stem}_S{sample.number}{lane_part}_{key}_001.fastq.gz"
    return f"{sample.project}/{name}" if sample.project else name


def write_reports(staging: Path, report: ConversionReport) -> None:
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


def publish(staging: Path, output_dir: Path, report: ConversionReport) -> None:
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
