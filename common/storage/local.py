"""Storage in a local folder: each write goes to a temporary name beside its key
and is renamed into place."""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from common.chunks import CHUNK
from common.storage.base import Storage, StorageError, StoredObject, clean_key


class LocalStorage(Storage):
    """Storage in a folder of the local file system."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    def path(self, key: str) -> Path:
        return self.root / clean_key(key)

    def put_stream(self, stream: BinaryIO, key: str) -> StoredObject:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial-{uuid.uuid4().hex}")
        digest, size = hashlib.sha256(), 0
        try:
            with open(partial, "wb") as out:
                while chunk := stream.read(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return StoredObject(clean_key(key), size, digest.hexdigest())

    def size(self, key: str) -> int:
        try:
            return self.path(key).stat().st_size
        except FileNotFoundError:
            raise StorageError(f"{self.location(key)} does not exist") from None

    def copy_from(self, source: Storage, source_key: str, key: str) -> StoredObject:
        """From another local folder: a hard link (same file system) under a
        temporary name, renamed into place; else a streamed copy."""
        if not isinstance(source, LocalStorage):
            return super().copy_from(source, source_key, key)
        origin, target = source.path(source_key), self.path(key)
        if not origin.is_file():
            raise StorageError(f"{source.location(source_key)} does not exist")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial-{uuid.uuid4().hex}")
        try:
            os.link(origin, partial)
        except OSError:  # another file system, or links refused: copy
            return super().copy_from(source, source_key, key)
        try:
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return StoredObject(clean_key(key), target.stat().st_size, "")

    def fetch(self, key: str, local_path: str | Path) -> Path:
        source = self.path(key)
        if not source.is_file():
            raise StorageError(f"{self.location(key)} does not exist")
        local_path = Path(local_path)
        local_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, local_path)
        return local_path

    def open(self, key: str) -> BinaryIO:
        try:
            return open(self.path(key), "rb")
        except FileNotFoundError:
            raise StorageError(f"{self.location(key)} does not exist") from None

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def delete(self, key: str) -> None:
        path = self.path(key)
        path.unlink(missing_ok=True)
        # Remove folders the key left empty, up to the root.
        for parent in path.parents:
            if parent == self.root or not parent.is_relative_to(self.root):
                break
            try:
                parent.rmdir()
            except OSError:
                break

    def list(self, prefix: str = "") -> Iterator[str]:
        if not self.root.is_dir():
            return
        for dirpath, _dirnames, filenames in os.walk(self.root):
            for name in filenames:
                if ".partial-" in name:
                    continue
                key = Path(dirpath, name).relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    yield key

    def location(self, key: str) -> str:
        return str(self.path(key))

    def url(self, key: str) -> str:
        return self.path(key).as_uri()
