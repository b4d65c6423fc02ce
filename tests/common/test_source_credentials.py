"""A mirror's credentials: stripped from what is stored, put back from the
setting when fetching."""

import importlib

import pytest
from django.apps import apps as django_apps
from django.utils import timezone

from common.models import OriginalFile, ProcessorJob, Provenance
from common.secrets import strip_credentials, with_credentials

BASES = [
    "https://reader:pa%40ss@mirror.example.org:8443/pub",
    "https://other:x@mirror.example.org:8443/pub/deeper",
    "ftp://anonymous@ftp.example.org/pub",
    "https://rest.example.org",
]


@pytest.mark.parametrize(
    "url, stripped",
    [
        ("https://reader:pa%40ss@mirror.example.org:8443/pub/a.gz", "https://mirror.example.org:8443/pub/a.gz"),
        ("ftp://anonymous@ftp.example.org/pub/a.gz", "ftp://ftp.example.org/pub/a.gz"),
        ("https://mirror.example.org/pub/a.gz?x=@y", "https://mirror.example.org/pub/a.gz?x=@y"),
        ("file:///data/a.txt", "file:///data/a.txt"),
    ],
)  # fmt: skip
def test_strip_credentials(url, stripped):
    assert strip_credentials(url) == stripped


@pytest.mark.parametrize(
    "url, fetched",
    [
        ("https://mirror.example.org:8443/pub/a.gz",
         "https://reader:pa%40ss@mirror.example.org:8443/pub/a.gz"),
        ("https://mirror.example.org:8443/pub/deeper/a.gz",  # the longest base wins
         "https://other:x@mirror.example.org:8443/pub/deeper/a.gz"),
        ("https://mirror.example.org:8443/public/a.gz",  # not under /pub
         "https://mirror.example.org:8443/public/a.gz"),
        ("https://mirror.example.org/pub/a.gz", "https://mirror.example.org/pub/a.gz"),  # port
        ("http://mirror.example.org:8443/pub/a.gz", "http://mirror.example.org:8443/pub/a.gz"),
        ("https://evil.example.com/pub/a.gz", "https://evil.example.com/pub/a.gz"),
        ("ftp://ftp.example.org/pub/a.gz", "ftp://anonymous@ftp.example.org/pub/a.gz"),
        ("https://rest.example.org/info", "https://rest.example.org/info"),
    ],
)  # fmt: skip
def test_with_credentials_puts_back_only_the_matching_bases(url, fetched):
    assert with_credentials(url, BASES) == fetched


@pytest.mark.django_db
def test_the_migration_strips_credentials_stored_before(db):
    migration = importlib.import_module("common.migrations.0006_strip_source_url_credentials")
    secret = "https://u:s3cret-pass@m.example.org/pub"
    OriginalFile.objects.create(source_url=f"{secret}/a.gz", filename="a.gz")
    OriginalFile.objects.create(source_url=f"{secret}/b.gz", filename="b.gz")
    OriginalFile.objects.create(source_url="https://m.example.org/pub/b.gz", filename="b.gz")
    now = timezone.now()
    Provenance.objects.create(
        processor_job=ProcessorJob.objects.create(pipeline="smoke_test"),
        processor_name="x", processor_version="1", started_at=now, ended_at=now,
        inputs=[{"filename": "a.gz", "source_url": f"{secret}/a.gz"}],
    )  # fmt: skip
    migration.strip_stored_credentials(django_apps, None)
    urls = sorted(OriginalFile.objects.values_list("source_url", flat=True))
    assert urls == [
        "https://m.example.org/pub/a.gz",
        "https://m.example.org/pub/b.gz",
        "https://u:********@m.example.org/pub/b.gz",  # the clean URL was taken: masked
    ]
    assert Provenance.objects.get().inputs[0]["source_url"] == "https://m.example.org/pub/a.gz"
