"""A mirror whose URL carries `user:password@`: the password lives in the
setting only. Nothing stored (files, provenance, jobs) and nothing the API serves
holds it, and the downloader still authenticates."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client

from common.models import JobState, OriginalFile, Provenance
from tests.attacks import run_queued_jobs
from tests.ensembl_fixtures import FUNGI

pytestmark = pytest.mark.django_db(transaction=True)
USER, PASSWORD = "mirror-reader", "s3cret-Passw0rd"
API_ENDPOINTS = [
    "/api/results/", "/api/transcriptome-indices/", "/api/batches/",
    "/api/jobs/downloader/", "/api/jobs/processor/", "/api/jobs/survey/",
]  # fmt: skip


def everything_stored() -> str:
    """Every row of every refinery table, as text."""
    dump = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            if table.startswith(("common_", "foreman_")):
                cursor.execute(f'SELECT * FROM "{table}"')
                dump.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(dump)


def test_a_password_in_a_mirror_url_is_used_but_never_stored(ensembl, settings):
    ensembl.require_credentials(USER, PASSWORD)
    settings.ENSEMBL_GENOMES_FTP_URL = ensembl.divisions_ftp_url.replace(
        "http://", f"http://{USER}:{PASSWORD}@"
    )
    call_command("survey", "ensembl", "--division", FUNGI, "--species", "refinery_demonstrans")
    files = list(OriginalFile.objects.all())
    assert len(files) == 2
    for original in files:
        assert original.source_url.startswith(ensembl.divisions_ftp_url + "/")
    jobs = run_queued_jobs()
    assert [j.state for j in jobs] == [JobState.SUCCEEDED] * 3, [j.failure_reason for j in jobs]
    # The mirror refused nothing: the downloader sent the setting's credentials.
    assert not [r for r in ensembl.requests if r.status == 401]
    for provenance in Provenance.objects.all():
        assert {i["source_url"] for i in provenance.inputs} == {f.source_url for f in files}
    stored = everything_stored()
    assert PASSWORD not in stored and USER not in stored
    client = Client()
    for endpoint in API_ENDPOINTS:
        answer = client.get(endpoint)
        assert answer.status_code == 200, endpoint
        text = json.dumps(answer.json())
        assert PASSWORD not in text and USER not in text, endpoint


def test_without_the_credentials_the_mirror_refuses(ensembl, settings):
    """The stand-in really checks them: the test above proves something."""
    ensembl.require_credentials(USER, PASSWORD)
    with pytest.raises(CommandError, match="HTTP 401"):
        call_command("survey", "ensembl", "--division", FUNGI, "--species", "refinery_demonstrans")
