"""Storage in an S3 bucket (any S3-compatible endpoint): multipart uploads
aborted on failure, server-side copies, presigned URLs."""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

from django.conf import settings

from common.storage.base import Storage, StorageError, StoredObject, clean_key

S3_PARALLEL_PARTS = 4
S3_MAX_COPY_OBJECT = 5 * 1024**3  # larger objects are copied in parts
S3_COPY_PART_SIZE = 512 * 1024**2  # a part copied by the server: large, since no bytes move here


class S3Storage(Storage):
    """Storage in an S3 bucket (any S3-compatible server: boto3 honours
    `AWS_ENDPOINT_URL`), under an optional prefix."""

    def __init__(self, bucket: str, prefix: str = "", part_size: int | None = None):
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.part_size = max(part_size or settings.REFINERY_S3_PART_SIZE, 5 * 1024 * 1024)

    def __repr__(self) -> str:
        return f"S3Storage({self.location('')!r})"

    @property
    def client(self):
        return s3_client()

    def object_key(self, key: str) -> str:
        key = clean_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _error(self, action: str, key: str, error: Exception) -> StorageError:
        return StorageError(f"S3 {action} of {self.location(key)} failed: {error}")

    def put_stream(self, stream: BinaryIO, key: str) -> StoredObject:
        object_key = self.object_key(key)
        digest = hashlib.sha256()
        first = stream.read(self.part_size)
        digest.update(first)
        try:
            if len(first) < self.part_size:
                self.client.put_object(Bucket=self.bucket, Key=object_key, Body=first)
                return StoredObject(clean_key(key), len(first), digest.hexdigest())
            size = self._put_multipart(stream, object_key, first, digest)
        except StorageError:
            raise
        except Exception as error:
            raise self._error("upload", key, error) from error
        return StoredObject(clean_key(key), size, digest.hexdigest())

    def _put_multipart(self, stream: BinaryIO, object_key: str, first: bytes, digest) -> int:
        """Upload parts in parallel while reading and hashing them in order; abort
        the upload (nothing appears under the key) if anything fails."""
        client = self.client
        upload_id = client.create_multipart_upload(Bucket=self.bucket, Key=object_key)["UploadId"]
        parts: dict[int, str] = {}
        size = 0
        try:
            with ThreadPoolExecutor(max_workers=S3_PARALLEL_PARTS) as pool:
                pending: set[Future] = set()
                number, chunk = 1, first
                while chunk:
                    size += len(chunk)
                    if len(pending) >= S3_PARALLEL_PARTS:
                        done, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for future in done:
                            part_number, etag = future.result()
                            parts[part_number] = etag
                    pending.add(pool.submit(self._put_part, object_key, upload_id, number, chunk))
                    number += 1
                    chunk = stream.read(self.part_size)
                    digest.update(chunk)
                for future in pending:
                    part_number, etag = future.result()
                    parts[part_number] = etag
            client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=object_key,
                UploadId=upload_id,
                MultipartUpload={
                    "Parts": [{"PartNumber": n, "ETag": parts[n]} for n in sorted(parts)]
                },
            )
        except BaseException:
            # The server may be gone; S3 expires abandoned uploads by lifecycle rules.
            with contextlib.suppress(Exception):
                client.abort_multipart_upload(
                    Bucket=self.bucket, Key=object_key, UploadId=upload_id
                )
            raise
        return size

    def _put_part(self, object_key: str, upload_id: str, number: int, body: bytes):
        response = self.client.upload_part(
            Bucket=self.bucket, Key=object_key, UploadId=upload_id, PartNumber=number, Body=body
        )
        return number, response["ETag"]

    def size(self, key: str) -> int:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except Exception as error:
            raise self._error("check", key, error) from error
        return head["ContentLength"]

    def copy_from(self, source: Storage, source_key: str, key: str) -> StoredObject:
        """From the same S3 server: a server-side copy (one CopyObject up to 5 GiB,
        else a multipart copy of ranges, aborted on failure); the bytes never pass
        through this process."""
        if not isinstance(source, S3Storage):
            return super().copy_from(source, source_key, key)
        object_key, origin = self.object_key(key), source.object_key(source_key)
        copy_source = {"Bucket": source.bucket, "Key": origin}
        size = source.size(source_key)
        try:
            if size <= S3_MAX_COPY_OBJECT:
                self.client.copy_object(Bucket=self.bucket, Key=object_key, CopySource=copy_source)
            else:
                self._copy_multipart(copy_source, object_key, size)
        except Exception as error:
            raise self._error("copy", key, error) from error
        return StoredObject(clean_key(key), size, "")

    def _copy_multipart(self, copy_source: dict, object_key: str, size: int) -> None:
        """Copy ranges of S3_COPY_PART_SIZE (more if 10,000 parts are not enough:
        S3's limit), S3_PARALLEL_PARTS at once; abort the upload on failure."""
        client = self.client
        part = max(self.part_size, S3_COPY_PART_SIZE, -(-size // 10_000))
        upload_id = client.create_multipart_upload(Bucket=self.bucket, Key=object_key)["UploadId"]

        def copy_part(number: int, start: int) -> dict:
            end = min(start + part, size) - 1
            response = client.upload_part_copy(
                Bucket=self.bucket, Key=object_key, UploadId=upload_id, PartNumber=number,
                CopySource=copy_source, CopySourceRange=f"bytes={start}-{end}",
            )  # fmt: skip
            return {"PartNumber": number, "ETag": response["CopyPartResult"]["ETag"]}

        try:
            with ThreadPoolExecutor(max_workers=S3_PARALLEL_PARTS) as pool:
                starts = range(0, size, part)
                parts = list(pool.map(copy_part, range(1, len(starts) + 1), starts))
            client.complete_multipart_upload(
                Bucket=self.bucket, Key=object_key, UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )  # fmt: skip
        except BaseException:
            with contextlib.suppress(Exception):
                client.abort_multipart_upload(
                    Bucket=self.bucket, Key=object_key, UploadId=upload_id
                )
            raise

    def fetch(self, key: str, local_path: str | Path) -> Path:
        local_path = Path(local_path)
        local_path.parent.mkdir(parents=True, exist_ok=True)
        partial = local_path.with_name(f".{local_path.name}.partial-{uuid.uuid4().hex}")
        try:
            self.client.download_file(self.bucket, self.object_key(key), str(partial))
            os.replace(partial, local_path)
        except Exception as error:
            partial.unlink(missing_ok=True)
            raise self._error("download", key, error) from error
        return local_path

    def open(self, key: str) -> BinaryIO:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))["Body"]
        except Exception as error:
            raise self._error("read", key, error) from error

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
            return True
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise self._error("check", key, error) from error

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))
        except Exception as error:
            raise self._error("delete", key, error) from error

    def list(self, prefix: str = "") -> Iterator[str]:
        full_prefix = f"{self.prefix}/{prefix}" if self.prefix else prefix
        strip = len(self.prefix) + 1 if self.prefix else 0
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=full_prefix):
            for item in page.get("Contents", []):
                yield item["Key"][strip:]

    def location(self, key: str) -> str:
        object_key = self.object_key(key) if key else self.prefix
        return f"s3://{self.bucket}/{object_key}"

    def url(self, key: str, expires_s: int = 7 * 24 * 3600) -> str:
        """A presigned URL anyone holding it can fetch for `expires_s` seconds."""
        return self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self.object_key(key)},
            ExpiresIn=expires_s,
        )


@lru_cache(maxsize=1)
def s3_client():
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3",
        config=Config(
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=10,
            read_timeout=60,
            max_pool_connections=S3_PARALLEL_PARTS * 4,
        ),
    )
