"""Readable job pages: durations as people say them, the same in the admin and
the CLI, and no failure icon on a job that succeeded."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse

from common.models import ProcessorJob
from foreman.cli_tables import span
from tests.foreman.helpers import smoke_job


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(3.5, "3.5 s"), (3, "3 s"), (0.04, "0 s"), (-1, "0 s"), (59.9, "59.9 s"),
     (65, "1 min 05 s"), (2 * 3600 + 4 * 60 + 9, "2 h 04 min"), (50 * 3600, "50 h 00 min")],
)  # fmt: skip
def test_durations_read_as_people_say_them(seconds, text):
    assert span(timedelta(seconds=seconds)) == text
    assert span(None) == "-"


@pytest.mark.django_db
def test_a_succeeded_job_shows_no_failure_icon_and_a_readable_duration(admin_client):
    job = smoke_job("ok", state="running")
    job.mark_succeeded()
    ProcessorJob.objects.filter(pk=job.pk).update(
        end_time=job.start_time + timedelta(seconds=90, milliseconds=300)
    )
    html = admin_client.get(reverse("admin:common_processorjob_change", args=[job.pk]))
    html = html.content.decode()
    assert "icon-no.svg" not in html  # Django's red ✗ for a False boolean
    assert "1 min 30 s" in html
    listing = admin_client.get(reverse("admin:common_processorjob_changelist")).content.decode()
    assert "1 min 30 s" in listing


@pytest.mark.django_db
def test_a_log_page_shows_the_tail_collapses_progress_and_links_back(admin_client, refinery_dirs):
    import io

    from common.storage import permanent_storage
    from runner.job_logs import log_key

    job = smoke_job("logged", state="running")
    job.mark_failed("boom")
    lines = [f"line {n}" for n in range(1, 601)]
    progress = "index 10%\rindex 50%\rindex 100%"
    content = "\n".join([*lines, progress]) + "\n"
    permanent_storage().put_stream(io.BytesIO(content.encode()), log_key(job))
    job.set_log_location(permanent_storage().location(log_key(job)))
    url = reverse("admin:common_processorjob_log", args=[job.pk])
    page = admin_client.get(url)
    shown = page.context["text"]
    assert shown.splitlines()[0] == "line 102" and shown.splitlines()[-1] == "index 100%"
    assert len(shown.splitlines()) == 500 and "index 50%" not in shown
    html = page.content.decode()
    assert "the last 500 of 601 lines" in html and 'href="?all=1"' in html
    assert reverse("admin:common_processorjob_change", args=[job.pk]) in html  # the way back
    every = admin_client.get(url, {"all": 1}).context["text"]
    assert every.splitlines()[0] == "line 1" and len(every.splitlines()) == 601
    assert admin_client.get(url, {"raw": 1}).content == content.encode()


@pytest.mark.django_db
def test_every_job_list_shows_state_with_colour_and_icon(admin_client):
    from common.models import DownloaderJob

    ok = smoke_job("ok", state="running")
    ok.mark_succeeded()
    bad = smoke_job("bad", state="running")
    bad.mark_failed("boom")
    smoke_job("run", state="running")
    DownloaderJob.objects.create(downloader_task="files")
    listing = admin_client.get(reverse("admin:common_processorjob_changelist")).content.decode()
    failed = 'class="state state-failed" style="color: #c62828; font-weight: bold">✗ failed'
    assert failed in listing
    assert 'class="state state-succeeded" style="color: #2e7d32; font-weight: bold">✓' in listing
    assert 'class="state state-running" style="color: #1565c0; font-weight: bold">▶' in listing
    downloads = admin_client.get(reverse("admin:common_downloaderjob_changelist"))
    assert "state-created" in downloads.content.decode()
    page = admin_client.get(reverse("admin:common_processorjob_change", args=[ok.pk]))
    assert "✓ succeeded" in page.content.decode() and "✗" not in page.content.decode()


@pytest.mark.django_db
def test_results_show_sizes_in_human_units_their_checksum_and_a_download_link(
    admin_client, refinery_dirs
):
    from tests.api.test_downloads import BODY, store_result

    computed = store_result()
    listing = admin_client.get(reverse("admin:common_computedfile_changelist")).content.decode()
    assert "31.2\xa0KB (32,000 bytes)" in listing
    assert computed.sha256[:12] in listing
    download = reverse("api:computedfile-download", args=[computed.pk])
    assert f'href="{download}"' in listing
    response = admin_client.get(download)  # the admin's session is enough
    assert b"".join(response.streaming_content) == BODY


@pytest.mark.django_db
def test_provenance_reads_as_shell_lines_and_indented_json(admin_client):
    from django.utils import timezone

    from common.models import Provenance

    job = smoke_job("provenance", state="running")
    provenance = Provenance.objects.create(
        processor_job=job, processor_name="salmon_quant", processor_version="1",
        tools={"salmon": "1.10.1"}, started_at=timezone.now(), ended_at=timezone.now(),
        commands=[["salmon", "quant", "-i", "my index", "-r", "reads.fastq.gz"]],
        parameters={"index_length": "long", "k": 31},
    )  # fmt: skip
    html = admin_client.get(
        reverse("admin:common_provenance_change", args=[provenance.pk])
    ).content.decode()
    assert "salmon quant -i &#x27;my index&#x27; -r reads.fastq.gz" in html
    indented = "{\n  &quot;index_length&quot;: &quot;long&quot;,\n  &quot;k&quot;: 31\n}"
    assert f'<pre class="readable">{indented}</pre>' in html
