"""What every storage offers (`Storage`), what it returns and raises, and the
checks of keys and checksums they share."""

from __future__ import annotations

import contextlib
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from common.chunks import CHUNK
from common.filenames import name_problem, shorten


class StorageError(Exception):
    """A storage operation failed; the message says which key and why."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    sha256: str


def sha256_of_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def clean_key(key: str) -> str:
    """`key` when it is a relative key of plain names (see `common.filenames`):
    no `..`, no absolute path, no empty, hidden or over-long segment, no control
    character, so no key escapes its storage or makes an unusable local path."""
    if not isinstance(key, str) or not key or key.startswith("/"):
        raise StorageError(f"invalid storage key {shorten(key)}: use a relative path")
    for part in key.split("/"):
        problem = name_problem(part)
        if problem is not None:
            raise StorageError(
                f"invalid storage key {shorten(key)}: its part {shorten(part)} is not a plain "
                f"name ({problem})"
            )
    return key


class Storage(ABC):
    """Where files live: `put_file`/`put_stream` a file under a key, `fetch` it to a
    local path, `open` it for streaming, `exists`, `delete`, `list` a prefix, and
    give its `location` (stable, recorded in the database) and a `url` to fetch."""

    def put_file(self, local_path: str | Path, key: str) -> StoredObject:
        with open(local_path, "rb") as handle:
            return self.put_stream(handle, key)

    @abstractmethod
    def put_stream(self, stream: BinaryIO, key: str) -> StoredObject: ...

    def size(self, key: str) -> int:
        """The stored object's size in bytes."""
        raise NotImplementedError

    def copy_from(self, source: Storage, source_key: str, key: str) -> StoredObject:
        """Copy `source_key` of `source` here under `key`, all or nothing. This
        default streams it through this process and hashes it; subclasses copy
        without moving the bytes where they can (and then return an empty
        `sha256`: read the copy back to check it)."""
        with contextlib.closing(source.open(source_key)) as stream:
            return self.put_stream(stream, key)

    @abstractmethod
    def fetch(self, key: str, local_path: str | Path) -> Path: ...

    @abstractmethod
    def open(self, key: str) -> BinaryIO: ...

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def delete(self, key: str) -> None: ...

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[str]: ...

    @abstractmethod
    def location(self, key: str) -> str: ...

    @abstractmethod
    def url(self, key: str) -> str: ...
