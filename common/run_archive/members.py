"""The run archive's members: what the folder holds (walked, sorted, every
entry checked: no link out, no FIFO or device, a UTF-8 name), the errors of the
whole package, and the constants writing and reading share."""

from __future__ import annotations

import fnmatch
import os
import posixpath
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from common.filenames import control_character

MANIFEST_VERSION = 1
CODECS = {"zstd": "tar.zst", "gzip": "tar.gz"}
# zstd's fastest standard level: base calls are high-entropy (CBCL tiles are gzip
# blocks already), so level 3 costs ~3x the CPU for a few per cent of size.
ZSTD_LEVEL = 1
GZIP_LEVEL = 1  # isal's levels are 0-3; 1 is its fast, usual setting
MAX_MANIFEST_BYTES = 512 * 1024 * 1024

Progress = Callable[[int, str], None]  # (bytes just read, the member's path)


class ArchiveError(Exception):
    """The archive cannot be written or read; `reason` names the entry and what
    to do. `retryable` says whether another attempt could succeed unchanged."""

    retryable = False

    def __init__(self, reason: str, path: str = ""):
        super().__init__(reason)
        self.reason, self.path = reason, path


class FileChanged(ArchiveError):
    """A file changed while it was read: the instrument or a person is still
    writing to the folder. Another attempt, later, may succeed."""

    retryable = True


class UnsafeEntry(ArchiveError):
    """An entry the archive will not hold (a link out, a FIFO, a device…)."""


class ArchiveMismatch(ArchiveError):
    """An archive read back does not match its manifest, or is damaged."""


class ReadFailed(ArchiveError):
    """A file could not be read for a reason that may pass (an I/O error)."""

    retryable = True


class StreamStorage(Protocol):
    def put_stream(self, stream: BinaryIO, key: str) -> Any: ...


@dataclass
class Member:
    """One entry of the folder: `path` is relative, with `/`."""

    path: str
    kind: str  # "file", "folder" or "link"
    mode: int
    mtime_ns: int
    size: int = 0
    target: str = ""
    ino: tuple[int, int] = (0, 0)
    sha256: str = ""

    def manifest_entry(self) -> dict:
        entry = {"path": self.path, "mode": f"{self.mode:04o}", "mtime_ns": self.mtime_ns}
        entry["mtime"] = iso_time(self.mtime_ns)
        if self.kind == "file":
            entry.update(size=self.size, sha256=self.sha256)
        elif self.kind == "link":
            entry["target"] = self.target
        return entry


def iso_time(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="microseconds")


# --- walking the folder --------------------------------------------------------------


def excluded(path: str, globs: Sequence[str]) -> bool:
    """Whether `path` or one of the folders above it matches one of `globs`
    (`fnmatch`, case-sensitive, relative to the run folder; `*` also matches `/`)."""
    parts = path.split("/")
    for end in range(1, len(parts) + 1):
        prefix = "/".join(parts[:end])
        if any(fnmatch.fnmatchcase(prefix, glob) for glob in globs):
            return True
    return False


def walk_run(root: str | Path, exclude: Sequence[str] = ()) -> tuple[list[Member], list[str]]:
    """The folder's members in archive order (each folder before what it holds,
    names sorted), and the paths left out by `exclude`. Raises UnsafeEntry for
    what the archive will not hold, ReadFailed/UnsafeEntry for what cannot be
    listed."""
    root = Path(root)
    real_root = os.path.realpath(root)
    members: list[Member] = []
    left_out: list[str] = []

    def visit(folder: Path, relative: str) -> None:
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except PermissionError:
            raise UnsafeEntry(
                f"{relative or '.'}: the folder cannot be read (permission denied): make it "
                "readable by the refinery's user, then retry",
                relative,
            ) from None
        except OSError as error:
            raise ReadFailed(
                f"{relative or '.'}: cannot list it: {error.strerror}", relative
            ) from None
        for entry in entries:
            path = f"{relative}/{entry.name}" if relative else entry.name
            check_member_name(entry.name, path)
            if excluded(path, exclude):
                left_out.append(path)
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                raise FileChanged(f"{path} disappeared while the folder was read", path) from None
            mode = stat.S_IMODE(info.st_mode)
            if stat.S_ISDIR(info.st_mode):
                members.append(Member(path, "folder", mode, info.st_mtime_ns))
                visit(Path(entry.path), path)
            elif stat.S_ISREG(info.st_mode):
                members.append(
                    Member(path, "file", mode, info.st_mtime_ns, info.st_size,
                           ino=(info.st_dev, info.st_ino))
                )  # fmt: skip
            elif stat.S_ISLNK(info.st_mode):
                target = os.readlink(entry.path)
                check_link(root, real_root, path, target)
                members.append(Member(path, "link", 0o777, info.st_mtime_ns, target=target))
            else:
                raise UnsafeEntry(
                    f"{path} is a {kind_of(info.st_mode)}, not a file, folder or link: the "
                    "archive will not hold it; remove it or exclude it "
                    "(REFINERY_ILLUMINA_ARCHIVE_EXCLUDE), then retry",
                    path,
                )

    visit(root, "")
    return members, left_out


def check_member_name(name: str, path: str) -> None:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsafeEntry(
            f"{path!r}: the name is not valid UTF-8: rename it, then retry", path
        ) from None
    if control_character(name) is not None:
        raise UnsafeEntry(f"{path!r}: the name holds a control character: rename it", path)


def check_link(root: Path, real_root: str, path: str, target: str) -> None:
    """A link is stored as a link (never followed) only when it leads to
    something inside the folder."""
    inside = not link_escapes(path, target)
    if inside:
        resolved = os.path.realpath(root / path)
        inside = resolved == real_root or resolved.startswith(real_root + os.sep)
    if not inside:
        raise UnsafeEntry(
            f"{path} is a symbolic link to {target!r}, outside the run folder: the archive does "
            "not follow links out; replace it with what it points to or exclude it "
            "(REFINERY_ILLUMINA_ARCHIVE_EXCLUDE), then retry",
            path,
        )


def escapes(normalized: str) -> bool:
    return normalized == ".." or normalized.startswith("../") or normalized.startswith("/")


def link_escapes(path: str, target: str) -> bool:
    """Whether a link at `path` (inside the folder) to `target` leads out of it."""
    return posixpath.isabs(target) or escapes(
        posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
    )


def kind_of(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "FIFO (named pipe)"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
    ):
        if test(mode):
            return name
    return f"special file (mode {mode:o})"
