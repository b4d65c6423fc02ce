"""`Storage.copy_from`: a server-side copy on S3 (one CopyObject, or a
multipart copy of ranges for large objects), a hard link between local
folders, a streamed copy between kinds; all or nothing."""

from __future__ import annotations

import io
import os

import pytest

from common.storage import LocalStorage, S3Storage, StorageError
from common.storage import s3 as storage_module


@pytest.fixture
def body() -> bytes:
    return os.urandom(11 << 20)


def test_a_local_copy_is_a_hard_link_renamed_into_place(tmp_path, body):
    temp, permanent = LocalStorage(tmp_path / "temp"), LocalStorage(tmp_path / "permanent")
    temp.put_stream(io.BytesIO(body), "a/run.tar.zst")
    copied = permanent.copy_from(temp, "a/run.tar.zst", "b/run.tar.zst")
    assert copied.size == len(body)
    assert os.path.samefile(temp.path("a/run.tar.zst"), permanent.path("b/run.tar.zst"))
    temp.delete("a/run.tar.zst")
    assert permanent.path("b/run.tar.zst").read_bytes() == body
    assert list(permanent.list()) == ["b/run.tar.zst"]
    with pytest.raises(StorageError, match="does not exist"):
        permanent.copy_from(temp, "a/run.tar.zst", "c/x")


def test_an_s3_copy_of_a_large_object_is_a_multipart_copy(s3_bucket, body, monkeypatch):
    monkeypatch.setattr(storage_module, "S3_MAX_COPY_OBJECT", 5 << 20)  # 11 MiB is "large"
    monkeypatch.setattr(storage_module, "S3_COPY_PART_SIZE", 5 << 20)  # in three parts
    part_numbers = []

    def record(params, **_):
        part_numbers.append(params["PartNumber"])

    S3Storage(s3_bucket).client.meta.events.register(
        "provide-client-params.s3.UploadPartCopy", record
    )
    temp = S3Storage(s3_bucket, "temp", part_size=5 << 20)
    permanent = S3Storage(s3_bucket, "permanent", part_size=5 << 20)
    temp.put_stream(io.BytesIO(body), "a/run.tar.zst")
    copied = permanent.copy_from(temp, "a/run.tar.zst", "b/run.tar.zst")
    assert copied.size == len(body)
    assert permanent.open("b/run.tar.zst").read() == body
    assert sorted(part_numbers) == [1, 2, 3]
    permanent.client.meta.events.unregister("provide-client-params.s3.UploadPartCopy", record)
    with pytest.raises(StorageError, match="S3 check of"):
        permanent.copy_from(temp, "a/missing", "b/missing")
    assert not permanent.exists("b/missing")
    uploads = permanent.client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", [])
    assert uploads == []


def test_between_kinds_the_copy_streams_and_hashes(s3_bucket, tmp_path, body):
    import hashlib

    local = LocalStorage(tmp_path / "temp")
    local.put_stream(io.BytesIO(body), "a/x.bin")
    copied = S3Storage(s3_bucket, "p").copy_from(local, "a/x.bin", "b/x.bin")
    assert (copied.size, copied.sha256) == (len(body), hashlib.sha256(body).hexdigest())
