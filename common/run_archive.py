"""A sequencer's run folder as one compressed tar archive, with its manifest.

Writing streams: the folder is walked (sorted, so the same tree gives the same
archive), each file is read once, hashed and fed to the compressor, and the
compressed bytes go straight to the storage's streaming upload (`put_stream`:
an S3 multipart upload, aborted on failure, or a local file written under a
temporary name and renamed). Nothing is copied to local disk first, and memory
stays bounded by the upload's parts whatever the run's size.

The manifest (JSON, stored beside the archive) lists each member: a file's
relative path, size, SHA-256, mtime and mode; each folder; each symbolic link
and its target. It also records the codec, what was excluded, and the archive's
own size and SHA-256.

What is refused (the reason names the entry): a symbolic link that leads out of
the folder (it is never followed; links inside are stored as links), a FIFO,
socket or device, an unreadable file, a name that is not valid UTF-8. A file
whose size or mtime changes while it is read fails with a retryable
`FileChanged`. The run folder is only ever read (files are opened
`O_RDONLY|O_NOFOLLOW|O_NONBLOCK`, with `O_NOATIME` where allowed).

Reading back (`read_archive`) checks every member against the manifest (size
and SHA-256 of each file, the target of each link, nothing missing, nothing
extra) and the archive's own SHA-256; `restore_archive` also unpacks it into a
folder, refusing absolute paths, `..`, links out of the folder and any member
type other than file, folder and link, under a temporary name renamed into
place once everything checked out.

This module imports no app: callers turn `ArchiveError` into their own errors.
"""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import io
import json
import os
import posixpath
import shutil
import stat
import tarfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from common.chunks import CHUNK
from common.filenames import UnsafeName, check_name, control_character

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


# --- writing ------------------------------------------------------------------------


def compressor(codec: str, threads: int | None = None):
    """An object with `compress(bytes)` and `flush()` for `codec`."""
    if codec == "zstd":
        import zstandard

        workers = threads if threads is not None else (os.cpu_count() or 1)
        return zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=workers).compressobj()
    if codec == "gzip":
        from isal import isal_zlib

        return isal_zlib.compressobj(GZIP_LEVEL, isal_zlib.DEFLATED, 31)
    raise ArchiveError(f"unknown archive codec {codec!r}: use one of {', '.join(CODECS)}")


def codec_version(codec: str) -> dict[str, str]:
    """The library that compresses `codec` and its version, for provenance."""
    if codec == "zstd":
        import zstandard

        return {
            "zstandard": zstandard.__version__,
            "zstd": ".".join(map(str, zstandard.ZSTD_VERSION)),
        }
    import isal

    return {"isal": isal.__version__}


def tar_header(member: Member, top: str) -> bytes:
    name = f"{top}/{member.path}"
    mtime = member.mtime_ns // 1_000_000_000
    if member.kind == "folder":
        return ustar_header(name, member.mode, 0, mtime, tarfile.DIRTYPE)
    if member.kind == "link":
        return ustar_header(name, member.mode, 0, mtime, tarfile.SYMTYPE, member.target)
    return ustar_header(name, member.mode, member.size, mtime, tarfile.REGTYPE)


def top_folder_header(top: str, mode: int, mtime_ns: int) -> bytes:
    return ustar_header(top, mode, 0, mtime_ns // 1_000_000_000, tarfile.DIRTYPE)


def ustar_header(
    name: str, mode: int, size: int, mtime: int, kind: bytes, linkname: str = ""
) -> bytes:
    """One member's header, as `tarfile` writes it in PAX format (owner 0, no
    user or group names). Written here for the common case (an ASCII name and
    link of at most 100 bytes): tarfile's own takes ~50 µs a member, which is
    most of the time on a folder of small files. Other members get tarfile's
    (with a PAX extended header)."""
    if kind == tarfile.DIRTYPE:
        name += "/"
    if (
        len(name) > 100 or len(linkname) > 100 or not name.isascii() or not linkname.isascii()
        or size >= 8**11 or not 0 <= mtime < 8**11
    ):  # fmt: skip
        info = tarfile.TarInfo(name)
        info.mode, info.size, info.mtime, info.type, info.linkname = (
            mode, size, mtime, kind, linkname,
        )  # fmt: skip
        info.uname = info.gname = ""
        return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "strict")
    header = bytearray(
        name.encode().ljust(100, b"\0")
        + b"%07o\0" % (mode & 0o7777)
        + b"0000000\0" * 2  # uid, gid
        + b"%011o\0" % size
        + b"%011o\0" % mtime
        + b" " * 8  # the checksum, counted as spaces
        + kind
        + linkname.encode().ljust(100, b"\0")
        + tarfile.POSIX_MAGIC
        + bytes(64)  # uname, gname
        + bytes(16 + 155 + 12)  # devmajor, devminor (unused), prefix, padding
    )
    header[148:156] = b"%06o\0 " % sum(header)
    return bytes(header)


class ArchiveStream(io.RawIOBase):
    """The compressed archive of `members` under `root`, produced as it is read
    (`read(n)`): what a storage's `put_stream` uploads. Files are hashed on the
    way; `members` carry their SHA-256 once the stream has ended.

    An error while producing (a file changed, a read failed) is raised from
    `read` and kept in `failure`, since a storage layer may wrap it."""

    def __init__(
        self,
        root: str | Path,
        members: list[Member],
        codec: str,
        threads: int | None = None,
        progress: Progress | None = None,
    ):
        self.root, self.members, self.codec = Path(root), members, codec
        try:
            self.top = check_name(Path(os.path.abspath(root)).name, "the run folder's name")
        except UnsafeName as error:
            raise UnsafeEntry(f"{error}: rename the folder, then survey it again") from None
        self.progress = progress
        self.failure: ArchiveError | None = None
        self._compressor = compressor(codec, threads)
        self._pieces = self._tar_pieces()
        self._buffer = bytearray()
        self._pending = bytearray()
        self._done = False

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        """Stop producing: the file being read (if any) is closed."""
        self._pieces.close()
        super().close()

    def read(self, size: int = -1) -> bytes:
        if self.failure is not None:
            raise self.failure
        try:
            while not self._done and (size < 0 or len(self._buffer) < size):
                piece = next(self._pieces, None)
                if piece is None:
                    self._compress_pending()
                    self._buffer += self._compressor.flush()
                    self._done = True
                elif len(piece) >= CHUNK and not self._pending:
                    self._buffer += self._compressor.compress(piece)
                else:  # headers and small files: compressed a megabyte at a time
                    self._pending += piece
                    if len(self._pending) >= CHUNK:
                        self._compress_pending()
        except ArchiveError as error:
            self.failure = error
            raise
        if size < 0 or size >= len(self._buffer):
            out = bytes(self._buffer)
            self._buffer.clear()
        else:
            out = bytes(self._buffer[:size])
            del self._buffer[:size]
        return out

    def _compress_pending(self) -> None:
        if self._pending:
            self._buffer += self._compressor.compress(self._pending)
            self._pending.clear()

    def _tar_pieces(self) -> Iterator[bytes]:
        info = os.stat(self.root)
        self.root_mode, self.root_mtime_ns = stat.S_IMODE(info.st_mode), info.st_mtime_ns
        header = top_folder_header(self.top, self.root_mode, self.root_mtime_ns)
        offset = len(header)
        yield header
        for member in self.members:
            header = tar_header(member, self.top)
            offset += len(header)
            yield header
            if member.kind == "file":
                yield from self._file_content(member)
                padding = -member.size % tarfile.BLOCKSIZE
                offset += member.size + padding
                if padding:
                    yield bytes(padding)
        # Two zero blocks end the archive; tarfile pads it to a full record too.
        offset += 2 * tarfile.BLOCKSIZE
        yield bytes(2 * tarfile.BLOCKSIZE + (-offset % tarfile.RECORDSIZE))

    def _file_content(self, member: Member) -> Iterator[bytes]:
        path = self.root / member.path
        try:
            fd = open_for_reading(path)
        except FileNotFoundError:
            raise FileChanged(
                f"{member.path} disappeared while the run was archived", member.path
            ) from None
        except PermissionError:
            raise UnsafeEntry(
                f"{member.path} cannot be read (permission denied): make it readable by the "
                "refinery's user, then retry",
                member.path,
            ) from None
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise FileChanged(
                    f"{member.path} became a link while the run was archived", member.path
                ) from None
            raise ReadFailed(
                f"{member.path}: cannot open it: {error.strerror}", member.path
            ) from None
        digest = hashlib.sha256()
        try:
            before = os.fstat(fd)
            if (before.st_dev, before.st_ino) != member.ino or not stat.S_ISREG(before.st_mode):
                raise FileChanged(
                    f"{member.path} was replaced while the run was archived", member.path
                )
            self._check_unchanged(member, before, "before it was read")
            left = member.size
            while left > 0:
                try:
                    chunk = os.read(fd, min(CHUNK, left))
                except OSError as error:
                    raise ReadFailed(
                        f"{member.path}: read failed: {error.strerror}", member.path
                    ) from None
                if not chunk:
                    raise FileChanged(
                        f"{member.path} shrank while it was read (from {member.size} bytes): the "
                        "folder is still being written; retry later",
                        member.path,
                    )
                digest.update(chunk)
                left -= len(chunk)
                if self.progress is not None:
                    self.progress(len(chunk), member.path)
                yield chunk
            self._check_unchanged(member, os.fstat(fd), "while it was read")
            try:
                again = os.lstat(path)
            except FileNotFoundError:
                raise FileChanged(
                    f"{member.path} disappeared while it was read", member.path
                ) from None
            if (again.st_dev, again.st_ino) != member.ino:
                raise FileChanged(f"{member.path} was replaced while it was read", member.path)
            self._check_unchanged(member, again, "while it was read")
        finally:
            os.close(fd)
        member.sha256 = digest.hexdigest()
        if self.progress is not None and member.size == 0:
            self.progress(0, member.path)

    @staticmethod
    def _check_unchanged(member: Member, info: os.stat_result, when: str) -> None:
        if info.st_size != member.size or info.st_mtime_ns != member.mtime_ns:
            raise FileChanged(
                f"{member.path} changed {when} (size {member.size} → {info.st_size} bytes, mtime "
                f"{iso_time(member.mtime_ns)} → {iso_time(info.st_mtime_ns)}): the folder is still "
                "being written; retry later",
                member.path,
            )


def open_for_reading(path: Path) -> int:
    """Open a file of the run folder: read only, never through a link, never
    waiting on a FIFO swapped in, and without touching its atime where the
    process may (it owns the file, or has CAP_FOWNER)."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        return os.open(path, flags | getattr(os, "O_NOATIME", 0))
    except PermissionError:
        return os.open(path, flags)


@dataclass
class ArchiveResult:
    """What `write_run_archive` stored."""

    archive: Any  # the storage's record of it (key, size, sha256)
    manifest_stored: Any
    manifest: dict = field(default_factory=dict)


def build_manifest(
    top: str,
    members: list[Member],
    codec: str,
    exclude: Sequence[str],
    left_out: list[str],
    archive_key: str,
    archive_size: int,
    archive_sha256: str,
    root_mode: int = 0o755,
    root_mtime_ns: int = 0,
) -> dict:
    files = [m for m in members if m.kind == "file"]
    return {
        "manifest_version": MANIFEST_VERSION,
        "run_folder": top,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "codec": codec,
        "archive": {"key": archive_key, "size": archive_size, "sha256": archive_sha256},
        "root": {"mode": f"{root_mode:04o}", "mtime_ns": root_mtime_ns},
        "exclude": list(exclude),
        "excluded": left_out,
        "totals": {"files": len(files), "bytes": total_bytes(members)},
        "files": [m.manifest_entry() for m in files],
        "folders": [m.manifest_entry() for m in members if m.kind == "folder"],
        "links": [m.manifest_entry() for m in members if m.kind == "link"],
    }


def write_run_archive(
    root: str | Path,
    storage: StreamStorage,
    archive_key: str,
    manifest_key: str,
    codec: str = "zstd",
    exclude: Sequence[str] = (),
    threads: int | None = None,
    progress: Progress | None = None,
    walked: tuple[list[Member], list[str]] | None = None,
) -> ArchiveResult:
    """Stream the run folder `root` as one archive into `storage` under
    `archive_key`, then its manifest under `manifest_key`. Raises ArchiveError
    (the storage's own error for a failed upload); either way nothing partial
    is left under either key."""
    if codec not in CODECS:
        raise ArchiveError(f"unknown archive codec {codec!r}: use one of {', '.join(CODECS)}")
    members, left_out = walked if walked is not None else walk_run(root, exclude)
    stream = ArchiveStream(root, members, codec, threads, progress)
    try:
        archive = storage.put_stream(stream, archive_key)
    except ArchiveError:
        raise
    except Exception:
        if stream.failure is not None:  # the storage wrapped our own error
            raise stream.failure from None
        raise
    finally:
        stream.close()
    manifest = build_manifest(
        stream.top, members, codec, exclude, left_out, archive.key, archive.size, archive.sha256,
        stream.root_mode, stream.root_mtime_ns,
    )  # fmt: skip
    body = json.dumps(manifest, ensure_ascii=False).encode("utf-8")
    manifest_stored = storage.put_stream(io.BytesIO(body), manifest_key)
    return ArchiveResult(archive, manifest_stored, manifest)


def total_bytes(members: list[Member]) -> int:
    return sum(m.size for m in members if m.kind == "file")


# --- reading back -------------------------------------------------------------------


def load_manifest(stream: BinaryIO, what: str = "the manifest") -> dict:
    """A manifest from its stored bytes; ArchiveMismatch if it is not one."""
    body = stream.read(MAX_MANIFEST_BYTES + 1)
    if len(body) > MAX_MANIFEST_BYTES:
        raise ArchiveMismatch(f"{what} is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        manifest = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise ArchiveMismatch(f"{what} is not valid JSON: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("manifest_version") != MANIFEST_VERSION:
        raise ArchiveMismatch(f"{what} is not a run archive manifest (version {MANIFEST_VERSION})")
    for key in ("files", "folders", "links"):
        if not isinstance(manifest.get(key), list):
            raise ArchiveMismatch(f"{what} has no {key!r} list")
    return manifest


class HashingReader(io.RawIOBase):
    """Reads `stream`, counting and hashing every byte read."""

    def __init__(self, stream: BinaryIO):
        self.stream, self.digest, self.size = stream, hashlib.sha256(), 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.digest.update(data)
        self.size += len(data)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


def decompressed(stream: BinaryIO, codec: str) -> BinaryIO:
    if codec == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(stream, read_size=CHUNK)
    if codec == "gzip":
        from isal import igzip

        return igzip.IGzipFile(fileobj=stream, mode="rb")
    raise ArchiveMismatch(f"the manifest names an unknown codec {codec!r}")


@dataclass
class ReadResult:
    files: int
    bytes: int
    archive_size: int
    archive_sha256: str


def safe_member_path(name: str, top: str) -> str:
    """The member's path inside the run folder ("" for the folder itself), or
    ArchiveMismatch for an absolute path, `..`, or a member outside `top/`."""
    if name.startswith("/") or "\x00" in name:
        raise ArchiveMismatch(f"archive member {name!r} has an absolute or unusable path")
    parts = name.rstrip("/").split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise ArchiveMismatch(f"archive member {name!r}: its path holds '', '.' or '..'")
    if parts[0] != top:
        raise ArchiveMismatch(f"archive member {name!r} is not inside the run folder {top!r}")
    return "/".join(parts[1:])


def read_archive(
    stream: BinaryIO,
    manifest: dict,
    dest: Path | None = None,
    progress: Progress | None = None,
    wanted: Callable[[str], bool] | None = None,
) -> ReadResult:
    """Read an archive through to its end and check it against `manifest`: each
    file's size and SHA-256, each link's target, each folder, nothing missing or
    extra, and the archive's own size and SHA-256. With `dest` (an existing,
    empty folder), also write the members under it (the run folder's contents go
    straight into `dest`): every one, or the files whose path `wanted` accepts.
    Raises ArchiveMismatch naming the first difference."""
    top = manifest.get("run_folder", "")
    check_name(top, "the manifest's run folder")
    expected: dict[str, tuple[str, dict]] = {}
    for kind in ("files", "folders", "links"):
        for entry in manifest[kind]:
            path = entry.get("path") if isinstance(entry, dict) else None
            if not isinstance(path, str):
                raise ArchiveMismatch(f"the manifest's {kind} list holds an entry without a path")
            safe_member_path(f"{top}/{path}", top)
            expected[path] = (kind, entry)
    raw = HashingReader(stream)
    seen: set[str] = set()
    files = total = 0
    try:
        with decompressed(raw, manifest.get("codec", "")) as plain:
            with tarfile.open(fileobj=plain, mode="r|", bufsize=CHUNK) as tar:
                for info in tar:
                    path = safe_member_path(info.name, top)
                    if path == "":
                        if not info.isdir():
                            raise ArchiveMismatch(f"archive member {info.name!r} is not a folder")
                        continue
                    if path in seen:
                        raise ArchiveMismatch(f"{path} is in the archive twice")
                    seen.add(path)
                    kind, entry = expected.get(path, (None, {}))
                    if kind is None:
                        raise ArchiveMismatch(f"{path} is in the archive but not in its manifest")
                    if kind == "files" and info.isreg():
                        keep = dest if wanted is None or wanted(path) else None
                        size = _check_file(tar, info, path, entry, keep, progress)
                        files, total = files + 1, total + size
                    elif kind == "folders" and info.isdir():
                        if dest is not None and wanted is None:
                            (dest / path).mkdir(parents=True, exist_ok=True)
                    elif kind == "links" and info.issym():
                        if info.linkname != entry.get("target"):
                            raise ArchiveMismatch(
                                f"{path}: the archive's link leads to {info.linkname!r}, the "
                                f"manifest says {entry.get('target')!r}"
                            )
                    else:
                        raise ArchiveMismatch(
                            f"{path}: the archive holds a {member_kind(info)}, the manifest a "
                            f"{kind[:-1]}"
                        )
            raw.drain()
    except ArchiveError:
        raise
    except (tarfile.TarError, EOFError, OSError, ValueError) as error:
        raise ArchiveMismatch(f"the archive is damaged: {type(error).__name__}: {error}") from None
    except Exception as error:  # zstandard.ZstdError and the like
        if type(error).__module__.startswith(("zstandard", "isal")):
            raise ArchiveMismatch(f"the archive is damaged: {error}") from None
        raise
    missing = sorted(set(expected) - seen)
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise ArchiveMismatch(f"{missing[0]}{more} listed in the manifest but not in the archive")
    recorded = manifest.get("archive") or {}
    sha256 = raw.digest.hexdigest()
    if recorded.get("sha256") and recorded["sha256"] != sha256:
        raise ArchiveMismatch(
            f"the archive's SHA-256 is {sha256}, the manifest records {recorded['sha256']}"
        )
    if recorded.get("size") is not None and recorded["size"] != raw.size:
        raise ArchiveMismatch(
            f"the archive has {raw.size} bytes, the manifest records {recorded['size']}"
        )
    return ReadResult(files, total, raw.size, sha256)


def member_kind(info: tarfile.TarInfo) -> str:
    if info.isreg():
        return "file"
    if info.isdir():
        return "folder"
    if info.issym():
        return "symbolic link"
    if info.islnk():
        return "hard link"
    return "special file"


def _check_file(tar, info, path: str, entry: dict, dest: Path | None, progress) -> int:
    if info.size != entry.get("size"):
        raise ArchiveMismatch(
            f"{path}: {info.size} bytes in the archive, {entry.get('size')} in the manifest"
        )
    digest = hashlib.sha256()
    source = tar.extractfile(info)
    out = None
    if dest is not None:
        target = dest / path
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        out = os.fdopen(fd, "wb")
    try:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            if out is not None:
                out.write(chunk)
            if progress is not None:
                progress(len(chunk), path)
    finally:
        if out is not None:
            out.close()
    if digest.hexdigest() != entry.get("sha256"):
        raise ArchiveMismatch(
            f"{path}: SHA-256 {digest.hexdigest()} in the archive, {entry.get('sha256')} in the "
            "manifest"
        )
    return info.size


def extract_members(
    stream: BinaryIO, manifest: dict, dest: str | Path, wanted: Callable[[str], bool]
) -> ReadResult:
    """Write only the files `wanted` accepts (paths inside the run folder) under
    `dest`, an existing empty folder, checking the whole archive as it goes: a
    converter needs the base calls, not the thumbnails."""
    return read_archive(stream, manifest, Path(dest), None, wanted)


def verify_archive(
    stream: BinaryIO, manifest: dict, progress: Progress | None = None
) -> ReadResult:
    """Read the archive back and check every member against the manifest."""
    return read_archive(stream, manifest, None, progress)


def restore_archive(
    stream: BinaryIO, manifest: dict, dest: str | Path, progress: Progress | None = None
) -> ReadResult:
    """Unpack the archive into `dest` (which must not exist, or be an empty
    folder) and check it against the manifest. The tree is built under a
    temporary name beside `dest` and renamed into place once it checked out, so
    a failure leaves `dest` as it was."""
    dest = Path(dest).absolute()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ArchiveError(f"{dest} is not an empty folder: restore into a new or empty one")
    if not dest.parent.is_dir():
        raise ArchiveError(f"{dest.parent} does not exist: create it first")
    staging = dest.with_name(f".{dest.name}.partial-{uuid.uuid4().hex}")
    staging.mkdir(mode=0o700)
    try:
        result = read_archive(stream, manifest, staging, progress)
        for entry in manifest["links"]:
            place_link(staging, entry["path"], entry["target"])
        finish_tree(staging, manifest)
        if dest.exists():
            dest.rmdir()
        os.rename(staging, dest)
        root = manifest.get("root") or {}
        if root.get("mode"):
            os.chmod(dest, int(root["mode"], 8) & 0o777 | 0o700)
        if root.get("mtime_ns"):
            os.utime(dest, ns=(root["mtime_ns"], root["mtime_ns"]))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return result


def place_link(root: Path, path: str, target: str) -> None:
    """Create a link once every file is in place, refusing one that would lead
    out of `root` (the archive was checked, the manifest is trusted no more)."""
    if link_escapes(path, target):
        raise ArchiveMismatch(f"{path}: a link to {target!r} would lead out of the folder")
    link = root / path
    link.parent.mkdir(parents=True, exist_ok=True)
    if os.path.realpath(link.parent) != os.path.join(os.path.realpath(root), *path.split("/")[:-1]):
        raise ArchiveMismatch(f"{path}: its folder is reached through a link")
    os.symlink(target, link)


def finish_tree(root: Path, manifest: dict) -> None:
    """Give files and folders the modes and mtimes the manifest records (folders
    last, deepest first, since writing into a folder changes its mtime)."""
    for entry in manifest["files"]:
        path = root / entry["path"]
        os.chmod(path, int(entry["mode"], 8) & 0o777)
        os.utime(path, ns=(entry["mtime_ns"], entry["mtime_ns"]))
    for entry in manifest["links"]:
        os.utime(root / entry["path"], ns=(entry["mtime_ns"],) * 2, follow_symlinks=False)
    for entry in sorted(manifest["folders"], key=lambda e: e["path"].count("/"), reverse=True):
        path = root / entry["path"]
        os.chmod(path, int(entry["mode"], 8) & 0o777 | 0o700)
        os.utime(path, ns=(entry["mtime_ns"], entry["mtime_ns"]))
