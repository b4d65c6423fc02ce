"""Writing a run archive: the folder streamed as tar through zstd or gzip into a
storage's streaming upload, each file read once and hashed, then its manifest
(see the package's docstring)."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import stat
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common.chunks import CHUNK
from common.filenames import UnsafeName, check_name
from common.run_archive.members import (
    CODECS,
    GZIP_LEVEL,
    MANIFEST_VERSION,
    ZSTD_LEVEL,
    ArchiveError,
    FileChanged,
    Member,
    Progress,
    ReadFailed,
    StreamStorage,
    UnsafeEntry,
    iso_time,
    walk_run,
)

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
