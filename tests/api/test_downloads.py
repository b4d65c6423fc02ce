"""Every result can be downloaded: streamed from local storage, or a redirect to
a presigned URL on S3; the bytes match the SHA-256 the database records; only
authenticated users, unless results are public."""

from __future__ import annotations

import base64
import hashlib
import io

import pytest
import requests
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from common.models import ComputedFile, ProcessorJob, Provenance
from common.storage import permanent_storage

pytestmark = pytest.mark.django_db
BODY = b"an index, an archive or a FASTQ\n" * 1000


@pytest.fixture
def stored(refinery_dirs, request) -> ComputedFile:
    """A result in permanent storage: S3 (moto) on PostgreSQL, local folders on SQLite."""
    if connection.vendor == "postgresql":
        request.getfixturevalue("s3_storage")
    return store_result()


def store_result() -> ComputedFile:
    job = ProcessorJob.objects.create(pipeline="smoke_test")
    provenance = Provenance.objects.create(
        processor_job=job, processor_name="smoke_test", processor_version="1",
        started_at=timezone.now(), ended_at=timezone.now(),
    )  # fmt: skip
    key = f"processor/smoke_test/job-{job.pk}/result.bin"
    stored = permanent_storage().put_stream(io.BytesIO(BODY), key)
    return ComputedFile.objects.create(
        key=key, filename="result.bin", format="bin", size=stored.size, sha256=stored.sha256,
        processor_job=job, provenance=provenance,
    )  # fmt: skip


def fetch(response) -> bytes:
    if response.status_code == 302:  # S3: a presigned URL, fetched as any client would
        answer = requests.get(response["Location"], timeout=30)
        assert answer.status_code == 200
        return answer.content
    assert response.status_code == 200, response
    return b"".join(response.streaming_content)


def test_an_authenticated_user_gets_the_bytes_the_record_describes(stored):
    client = APIClient()
    client.force_authenticate(get_user_model().objects.create_user("analyst"))
    listed = client.get("/api/results/", {"processor_job": stored.processor_job_id}).json()
    url = listed["results"][0]["download_url"]
    assert url.endswith(f"/api/results/{stored.pk}/download/")
    response = client.get(url)
    body = fetch(response)
    assert body == BODY
    assert hashlib.sha256(body).hexdigest() == stored.sha256 == response["X-Checksum-SHA256"]
    assert (
        response["Digest"] == "sha-256=" + base64.b64encode(hashlib.sha256(BODY).digest()).decode()
    )


def test_anonymous_users_may_not_download_unless_results_are_public(stored, settings):
    client = APIClient()
    response = client.get(f"/api/results/{stored.pk}/download/")
    assert response.status_code == 401
    assert "REFINERY_PUBLIC_DOWNLOADS" in response.json()["detail"]
    settings.REFINERY_PUBLIC_DOWNLOADS = True
    assert fetch(client.get(f"/api/results/{stored.pk}/download/")) == BODY


def test_a_file_missing_from_local_storage_is_a_410_saying_so(refinery_dirs, settings):
    stored = store_result()  # local folders, on either database
    permanent_storage().delete(stored.key)
    settings.REFINERY_PUBLIC_DOWNLOADS = True
    response = APIClient().get(f"/api/results/{stored.pk}/download/")
    assert response.status_code == 410 and b"missing from storage" in response.content
