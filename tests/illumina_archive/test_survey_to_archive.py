"""The whole Illumina path with the real survey: a generated NovaSeq 6000 run
folder is surveyed as still sequencing, then complete once CopyComplete.txt is
old enough; its archive job and processor run; the run ends `archived` with its
whole history, and `runs restore` gives the folder back byte for byte. S3
(moto) on PostgreSQL, local folders on SQLite."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from common.models import DownloaderJob, JobState, ProcessorJob, SequencingRun
from demo.illumina_run import finish_run, write_run_folder
from tests.illumina_archive.helpers import snapshot
from tests.illumina_archive.test_archive_jobs import run_downloader, run_processor

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_run_is_found_archived_and_restored_with_its_history(storage_kind, tmp_path, settings):
    settings.REFINERY_ILLUMINA_GRACE_S = 0
    share = tmp_path / "share"
    folder = write_run_folder(share, "novaseq6000", number=7)
    call_command("survey", "illumina_runs", str(share), stdout=io.StringIO())
    run = SequencingRun.objects.get()
    assert (run.run_id, run.state, run.instrument_type) == (
        folder.name,
        "sequencing",
        "NovaSeq 6000",
    )
    assert not DownloaderJob.objects.exists(), "no batch before the run is complete"

    finish_run(folder, "novaseq6000")
    before = snapshot(folder)
    call_command("survey", "illumina_runs", str(share), stdout=io.StringIO())
    [downloader] = DownloaderJob.objects.all()
    assert run_downloader(downloader).state == JobState.SUCCEEDED, downloader.failure_reason
    [archiver] = ProcessorJob.objects.filter(pipeline="illumina_run_archive")
    assert run_processor(archiver).state == JobState.SUCCEEDED, archiver.failure_reason
    assert snapshot(folder) == before, "archiving changed the run folder"

    run.refresh_from_db()
    assert run.state == "archived"
    assert list(run.history.values_list("new_state", flat=True)) == [
        "sequencing",
        "complete",
        "archiving",
        "archived",
    ]
    restored = tmp_path / "restored"
    call_command("runs", "restore", run.run_id, str(restored), stdout=io.StringIO())
    assert (
        snapshot(restored / folder.name if (restored / folder.name).is_dir() else restored)
        == before
    )
