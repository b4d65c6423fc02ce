"""Storage round trips on both back ends: a local folder and S3 on a loopback
moto server, with the same tests."""

import hashlib
import io
import os
import re

import pytest

from common.storage import LocalStorage, S3Storage, StorageError, storage_at


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path):
    if request.param == "local":
        return LocalStorage(tmp_path / "store")
    bucket = request.getfixturevalue("s3_bucket")
    return S3Storage(bucket, "prefix/x", part_size=5 * 1024 * 1024)


class FailingStream(io.RawIOBase):
    """Gives `good` bytes, then fails like a dropped connection."""

    def __init__(self, good: int):
        self.left = good

    def readable(self):
        return True

    def readinto(self, buffer):
        if self.left <= 0:
            raise OSError("connection reset by peer")
        n = min(len(buffer), self.left)
        buffer[:n] = os.urandom(n)
        self.left -= n
        return n


def test_round_trip_with_checksum(storage, tmp_path):
    data = os.urandom(300_000)
    source = tmp_path / "in.bin"
    source.write_bytes(data)
    stored = storage.put_file(source, "job-1/result.bin")
    assert stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert storage.exists("job-1/result.bin")
    assert storage.fetch("job-1/result.bin", tmp_path / "out.bin").read_bytes() == data
    with storage.open("job-1/result.bin") as handle:
        assert handle.read() == data
    assert list(storage.list("job-1/")) == ["job-1/result.bin"]
    storage.delete("job-1/result.bin")
    assert not storage.exists("job-1/result.bin")
    assert list(storage.list("job-1/")) == []


def test_a_large_file_goes_in_parts_with_the_right_checksum(storage, tmp_path):
    data = os.urandom(12 * 1024 * 1024 + 123)  # three parts of 5 MiB on S3
    stored = storage.put_stream(io.BytesIO(data), "big.bin")
    assert stored.sha256 == hashlib.sha256(data).hexdigest() and stored.size == len(data)
    assert storage.fetch("big.bin", tmp_path / "big.bin").read_bytes() == data


@pytest.mark.parametrize("good_bytes", [1000, 11 * 1024 * 1024])
def test_a_failed_upload_leaves_nothing_under_the_key(storage, good_bytes):
    with pytest.raises((OSError, StorageError)):
        storage.put_stream(io.BufferedReader(FailingStream(good_bytes)), "half.bin")
    assert not storage.exists("half.bin")
    assert list(storage.list()) == []
    if isinstance(storage, S3Storage):
        uploads = storage.client.list_multipart_uploads(Bucket=storage.bucket)
        assert uploads.get("Uploads", []) == []


def test_a_failed_upload_keeps_the_previous_object(storage):
    storage.put_stream(io.BytesIO(b"first version"), "kept.txt")
    with pytest.raises((OSError, StorageError)):
        storage.put_stream(io.BufferedReader(FailingStream(100)), "kept.txt")
    with storage.open("kept.txt") as handle:
        assert handle.read() == b"first version"


def test_missing_keys_are_clear_errors(storage, tmp_path):
    where = re.escape(storage.location("nope.bin"))
    missing = rf"^({where} does not exist|S3 download of {where} failed: .*(404|Not Found))"
    with pytest.raises(StorageError, match=missing):
        storage.fetch("nope.bin", tmp_path / "nope.bin")
    assert not (tmp_path / "nope.bin").exists()


BAD_KEYS = [
    "../etc/passwd", "/abs", "a/../../b", "", "a//b", "a/./b", "a\\..\\b", "a/\0b",
    "a/line\nbreak", "a/.hidden", "a/" + "x" * 256, "a/",
]  # fmt: skip


@pytest.mark.parametrize("bad", BAD_KEYS)
def test_keys_cannot_escape_the_storage_or_make_unusable_paths(storage, bad, tmp_path):
    with pytest.raises(StorageError, match="invalid storage key"):
        storage.put_stream(io.BytesIO(b"x"), bad)
    for use in (storage.exists, storage.delete, storage.open):
        with pytest.raises(StorageError, match="invalid storage key"):
            use(bad)
    with pytest.raises(StorageError, match="invalid storage key"):
        storage.fetch(bad, tmp_path / "out")


def test_storage_at_reads_the_setting_forms(tmp_path):
    assert isinstance(storage_at(str(tmp_path)), LocalStorage)
    s3 = storage_at("s3://bucket/some/prefix")
    assert isinstance(s3, S3Storage) and s3.location("k") == "s3://bucket/some/prefix/k"
    with pytest.raises(StorageError):
        storage_at("gs://bucket")
