"""Downloads from a source that lies: a file name stored before names were
checked, a local file that cannot be read or became a link out of its folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from common.models import Batch, DownloaderJob, JobState, OriginalFile
from common.storage import temporary_storage
from tests.attacks import make_sentinel, run_queued_jobs, snapshot
from tests.conftest import MANAGE, PROJECT

pytestmark = pytest.mark.django_db(transaction=True)
GENOME = "Refinery_demonstrans.Demo1.0.dna.toplevel.fa.gz"


def local_download(source: Path, filename: str) -> DownloaderJob:
    """A `files` download of `source` as the local_files surveyor would queue it,
    with `filename` stored as the file's name."""
    batch = Batch.objects.create(
        source="local_files", accession=filename[:200], pipeline_required="file_summary"
    )
    original = OriginalFile.objects.create(source_url=source.as_uri(), filename=filename)
    batch.original_files.add(original)
    job = DownloaderJob.objects.create(downloader_task="files")
    job.batches.add(batch)
    return job


def run_one(job: DownloaderJob) -> DownloaderJob:
    from runner.registry import work_for

    assert job.mark_started("test-worker", "test")
    work_for(job)(job)
    job.refresh_from_db()
    return job


@pytest.mark.parametrize("kind", ["absolute", "up"])
def test_a_stored_unsafe_name_fails_the_download_and_reaches_nothing(refinery_dirs, tmp_path, kind):
    """Rows stored before names were checked at survey time are checked again."""
    sentinel = make_sentinel(tmp_path)
    before = snapshot(sentinel)
    source = tmp_path / "source.txt"
    source.write_text("served bytes\n")
    name = f"{sentinel}/evil.txt" if kind == "absolute" else "../../../sentinel/evil.txt"
    job = run_one(local_download(source, name))
    assert snapshot(sentinel) == before
    assert job.state == JobState.FAILED and job.no_retry, job.failure_reason
    assert repr(name) in job.failure_reason and "not one plain file name" in job.failure_reason
    assert list(temporary_storage().list()) == []
    assert not any(Path(refinery_dirs / "work").glob("*/*"))


def run_job_without_root_powers(job: DownloaderJob, env: dict) -> subprocess.CompletedProcess:
    """`manage.py run_job downloader <id>` in a new process that cannot read a
    file its permissions forbid, even as root (no CAP_DAC_OVERRIDE)."""
    argv = [sys.executable, str(MANAGE), "run_job", "downloader", str(job.pk)]
    if os.geteuid() == 0:
        drop = "-dac_override,-dac_read_search"
        argv = ["setpriv", f"--inh-caps={drop}", f"--bounding-set={drop}", *argv]
    return subprocess.run(argv, env=env, cwd=PROJECT, capture_output=True, text=True, timeout=120)


def test_an_unreadable_local_file_fails_without_retry_and_leaves_nothing(
    tmp_path, settings, subprocess_env
):
    folder = tmp_path / "incoming"
    folder.mkdir()
    (folder / "locked.txt").write_text("cannot be read\n")
    (folder / "locked.txt").chmod(0)
    call_command("survey", "local_files", str(folder))
    job = DownloaderJob.objects.get()
    result = run_job_without_root_powers(job, subprocess_env())
    job.refresh_from_db()
    assert result.returncode == 1, result.stdout + result.stderr
    assert job.state == JobState.FAILED and job.no_retry, job.failure_reason
    assert str(folder / "locked.txt") in job.failure_reason
    assert "cannot read" in job.failure_reason and "Traceback" not in job.failure_reason
    assert list(Path(settings.REFINERY_WORK_DIR).glob("*")) == []
    assert list(temporary_storage().list()) == []


def test_a_local_file_that_became_a_link_out_of_its_folder_is_not_read(tmp_path, refinery_dirs):
    folder, outside = tmp_path / "incoming", tmp_path / "private"
    folder.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("a secret\n")
    (folder / "a.txt").write_text("ordinary\n")
    call_command("survey", "local_files", str(folder))
    (folder / "a.txt").unlink()
    (folder / "a.txt").symlink_to(outside / "secret.txt")  # after the survey looked
    [job, *processors] = run_queued_jobs()
    assert processors == []
    assert job.state == JobState.FAILED and job.no_retry, job.failure_reason
    assert "link" in job.failure_reason and str(folder / "a.txt") in job.failure_reason
    assert list(temporary_storage().list()) == []
