"""Reading a run archive back: every member checked against the manifest (size,
SHA-256, link targets, nothing missing or extra), and restoring it into a folder
under a temporary name renamed into place (see the package's docstring)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from common.chunks import CHUNK
from common.filenames import check_name
from common.run_archive.members import (
    MANIFEST_VERSION,
    MAX_MANIFEST_BYTES,
    ArchiveError,
    ArchiveMismatch,
    Progress,
    link_escapes,
)

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
