"""Temporary and permanent storage: a local folder or an S3 bucket, one interface.

Every write is all-or-nothing: a local file is written beside its key and
renamed into place; an S3 object is written as a multipart upload that is
aborted on failure (or a single PUT), so a failed upload never leaves a partial
object under the final key. The SHA-256 and size of what was written are
computed while it streams.

Its parts: `base` (the interface, errors, key and checksum checks), `local`
(a folder) and `s3` (a bucket); this module chooses one from a setting.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings

from common.storage.base import (
    Storage,
    StorageError,
    StoredObject,
    clean_key,
    sha256_of_file,
)
from common.storage.local import LocalStorage
from common.storage.s3 import S3Storage, s3_client


def storage_at(location: str) -> Storage:
    """The storage a setting names: a folder path, or `s3://bucket/prefix`."""
    if location.startswith("s3://"):
        parts = urlsplit(location)
        if not parts.netloc:
            raise StorageError(f"{location!r} names no bucket: write s3://bucket/prefix")
        return S3Storage(parts.netloc, parts.path)
    if "://" in location:
        raise StorageError(f"unsupported storage {location!r}: use a folder or s3://bucket/prefix")
    return LocalStorage(location)


def temporary_storage() -> Storage:
    """Where downloaded raw files wait for their processors."""
    return storage_at(settings.REFINERY_TEMP_STORAGE)


def permanent_storage() -> Storage:
    """Where results and job logs are kept."""
    return storage_at(settings.REFINERY_PERMANENT_STORAGE)


__all__ = [
    "LocalStorage",
    "S3Storage",
    "Storage",
    "StorageError",
    "StoredObject",
    "clean_key",
    "permanent_storage",
    "s3_client",
    "sha256_of_file",
    "storage_at",
    "temporary_storage",
]
