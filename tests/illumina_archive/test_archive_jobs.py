"""A run folder through the `illumina_run` downloader and the
`illumina_run_archive` processor into permanent storage, and back with `runs
restore`: on PostgreSQL with S3 (moto on loopback) and on SQLite with local
folders (the `storage_kind` fixture); the S3-only tests run on either."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from django.core.management import CommandError, call_command

from common.models import (
    BatchStatus,
    ComputedFile,
    DownloaderJob,
    JobState,
    OriginalFile,
    ProcessorJob,
    SequencingRun,
)
from common.storage import permanent_storage, storage_at, temporary_storage
from downloaders.illumina_run import download_illumina_run
from processors.illumina_run_archive import archive_run
from tests.illumina_archive.conftest import make_run_rows
from tests.illumina_archive.helpers import RUN_ID, snapshot, without_file_permission_override

pytestmark = pytest.mark.django_db(transaction=True)


def run_downloader(job: DownloaderJob) -> DownloaderJob:
    assert job.mark_started("test", "1")
    download_illumina_run(job)
    job.refresh_from_db()
    return job


def run_processor(job: ProcessorJob) -> ProcessorJob:
    assert job.mark_started("test", "1")
    archive_run(job)
    job.refresh_from_db()
    return job


def temp_keys() -> list[str]:
    return sorted(temporary_storage().list())


def test_archive_verify_and_restore_give_a_byte_identical_tree(
    storage_kind, run_folder, tmp_path, capsys
):
    before = snapshot(run_folder)
    run, job = make_run_rows(run_folder)
    job = run_downloader(job)
    assert job.state == JobState.SUCCEEDED, job.failure_reason
    assert snapshot(run_folder) == before, "the downloader changed the run folder"
    archive, manifest = (OriginalFile.objects.get(source_url__endswith=f"#{p}")
                         for p in ("archive", "manifest"))  # fmt: skip
    assert archive.filename == f"{RUN_ID}.tar.zst" and archive.is_downloaded
    assert manifest.filename == f"{RUN_ID}.manifest.json" and manifest.is_downloaded
    assert set(archive.batches.values_list("variant", flat=True)) == {"archive", "fastq"}
    assert temp_keys() == sorted([archive.temp_key, manifest.temp_key])
    processors = {p.pipeline: p for p in ProcessorJob.objects.all()}
    assert set(processors) == {"illumina_run_archive", "bcl2fastq"}
    run.refresh_state()
    assert run.state == "archiving"

    processor = run_processor(processors["illumina_run_archive"])
    assert processor.state == JobState.SUCCEEDED, processor.failure_reason
    results = {f.format: f for f in ComputedFile.objects.filter(processor_job=processor)}
    assert set(results) == {"tar.zst", "json"}
    assert (results["tar.zst"].size, results["tar.zst"].sha256) == (archive.size, archive.sha256)
    assert permanent_storage().exists(results["tar.zst"].key)
    provenance = results["tar.zst"].provenance
    assert provenance.parameters["codec"] == "zstd"
    assert provenance.parameters["files"] == len([v for v in before.values() if v[0] == "file"])
    assert provenance.parameters["archive_sha256"] == archive.sha256
    assert "zstandard" in provenance.tools
    assert {i["filename"] for i in provenance.inputs} == {archive.filename, manifest.filename}
    run.refresh_state()
    assert run.state == "archived"
    assert [(c.old_state, c.new_state) for c in run.history] == [
        ("sequencing", "complete"), ("complete", "archiving"), ("archiving", "archived"),
    ]  # fmt: skip
    # The fastq batch still needs the temporary copy.
    assert temp_keys() == sorted([archive.temp_key, manifest.temp_key])

    dest = tmp_path / "restored"
    call_command("runs", "restore", RUN_ID, str(dest))
    assert snapshot(dest) == before
    assert "every file matches the manifest" in capsys.readouterr().out
    assert snapshot(run_folder) == before


def test_the_temporary_copy_goes_once_every_batch_of_the_run_is_done(
    storage_kind, run_folder, settings
):
    settings.REFINERY_ARCHIVE_CODEC = "gzip"
    _run, job = make_run_rows(run_folder, fastq=False)
    assert run_downloader(job).state == JobState.SUCCEEDED
    assert len(temp_keys()) == 2 and temp_keys()[0].endswith(".manifest.json") is False
    processor = run_processor(ProcessorJob.objects.get())
    assert processor.state == JobState.SUCCEEDED, processor.failure_reason
    assert temp_keys() == []
    assert not OriginalFile.objects.filter(is_downloaded=True).exists()
    assert ComputedFile.objects.filter(format="tar.gz").count() == 1


def test_excluded_globs_are_left_out_of_the_archive(refinery_dirs, run_folder, settings):
    settings.REFINERY_ILLUMINA_ARCHIVE_EXCLUDE = ["Thumbnail_Images"]
    _run, job = make_run_rows(run_folder, fastq=False)
    assert run_downloader(job).state == JobState.SUCCEEDED
    manifest_file = OriginalFile.objects.get(source_url__endswith="#manifest")
    manifest = json.load(temporary_storage().open(manifest_file.temp_key))
    assert manifest["excluded"] == ["Thumbnail_Images"]
    assert not any(f["path"].startswith("Thumbnail_Images") for f in manifest["files"])
    processor = run_processor(ProcessorJob.objects.get())
    assert processor.provenance.parameters["exclude"] == ["Thumbnail_Images"]


APPENDER = """
import sys, time
with open(sys.argv[1], "ab", buffering=0) as log:
    while True:
        log.write(b"cycle done\\n")
        time.sleep(0.0005)
"""


def test_a_file_growing_during_the_archive_fails_the_attempt_and_the_retry_succeeds(
    storage_kind, run_folder
):
    """A real writer process appends to a log in the run folder while the job
    reads it, as an instrument still copying would."""
    log = run_folder / "Logs" / "instrument.log"
    log.write_bytes(b"x" * (4 << 20))
    appender = subprocess.Popen([sys.executable, "-c", APPENDER, str(log)])
    try:
        size = log.stat().st_size
        while log.stat().st_size == size:
            time.sleep(0.01)
        _run, job = make_run_rows(run_folder)
        job = run_downloader(job)
    finally:
        appender.kill()
        appender.wait()
    assert job.state == JobState.FAILED and not job.no_retry
    assert "Logs/instrument.log changed" in job.failure_reason
    assert "retry later" in job.failure_reason
    assert temp_keys() == [] and ProcessorJob.objects.count() == 0
    assert not OriginalFile.objects.filter(is_downloaded=True).exists()

    retry = run_downloader(job.create_retry())
    assert retry.state == JobState.SUCCEEDED, retry.failure_reason
    assert len(temp_keys()) == 2
    processor = run_processor(ProcessorJob.objects.get(pipeline="illumina_run_archive"))
    assert processor.state == JobState.SUCCEEDED, processor.failure_reason


def test_a_link_out_of_the_folder_fails_the_job_for_good_naming_it(refinery_dirs, run_folder):
    os.symlink("/etc", run_folder / "InterOp" / "etc")
    _run, job = make_run_rows(run_folder)
    job = run_downloader(job)
    assert job.state == JobState.FAILED and job.no_retry
    assert "InterOp/etc is a symbolic link to '/etc', outside the run folder" in job.failure_reason
    assert str(run_folder) in job.failure_reason
    assert temp_keys() == []


def test_a_fifo_fails_the_job_for_good_naming_it(refinery_dirs, run_folder):
    os.mkfifo(run_folder / "Logs" / "pipe")
    _run, job = make_run_rows(run_folder)
    job = run_downloader(job)
    assert job.state == JobState.FAILED and job.no_retry
    assert "Logs/pipe is a FIFO (named pipe)" in job.failure_reason
    assert temp_keys() == []


def test_an_unreadable_file_fails_the_job_saying_what_to_do(
    refinery_dirs, run_folder, start_manage
):
    """`run_job` runs in a process that cannot override file modes (as root it
    could read anything)."""
    os.chmod(run_folder / "RunInfo.xml", 0)
    _run, job = make_run_rows(run_folder)
    process = start_manage("run_job", "downloader", job.pk,
                           preexec_fn=without_file_permission_override)  # fmt: skip
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 1, output
    job.refresh_from_db()
    assert job.state == JobState.FAILED and job.no_retry
    assert "RunInfo.xml cannot be read (permission denied)" in job.failure_reason
    assert "make it readable" in job.failure_reason
    assert temp_keys() == []


def test_a_vanished_folder_fails_for_good(refinery_dirs, run_folder):
    _run, job = make_run_rows(run_folder)
    run_folder.rename(run_folder.with_name("moved"))
    job = run_downloader(job)
    assert job.state == JobState.FAILED and job.no_retry
    assert "is gone or not a folder: survey again" in job.failure_reason


def big_run_folder(run_folder) -> None:
    """Enough incompressible bytes that the upload takes several parts."""
    bulk = run_folder / "Data" / "Bulk"
    bulk.mkdir()
    for n in range(4):
        (bulk / f"chunk{n}.bin").write_bytes(os.urandom(4 << 20))


def test_a_kill_mid_upload_leaves_nothing_visible_and_the_retry_cleans_up(
    storage_kind, run_folder, start_manage, settings
):
    big_run_folder(run_folder)
    _run, job = make_run_rows(run_folder, fastq=False)
    temp = temporary_storage()
    env = {"REFINERY_S3_PART_SIZE": str(5 << 20)}
    process = start_manage("run_job", "downloader", job.pk, env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while not uploading(temp) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert uploading(temp), "the job was not killed mid-upload"
    assert temp_keys() == [], "a killed upload left a visible object"
    assert not OriginalFile.objects.filter(is_downloaded=True).exists()

    job.refresh_from_db()
    job.mark_failed("its worker was killed")
    retry = run_downloader(job.create_retry())
    assert retry.state == JobState.SUCCEEDED, retry.failure_reason
    keys = temp_keys()
    assert len(keys) == 2 and all(k.startswith(f"downloader/job-{retry.pk}/") for k in keys)
    processor = run_processor(ProcessorJob.objects.get())
    assert processor.state == JobState.SUCCEEDED, processor.failure_reason


def uploading(storage) -> bool:
    """An upload under way: a multipart upload on S3, a partial file locally."""
    if hasattr(storage, "bucket"):
        listed = storage.client.list_multipart_uploads(Bucket=storage.bucket)
        return bool(listed.get("Uploads"))
    return any(".partial-" in p.name for p in storage.root.rglob("*"))


def test_a_damaged_temporary_archive_fails_verification_and_keeps_nothing(
    refinery_dirs, run_folder
):
    run, job = make_run_rows(run_folder, fastq=False)
    assert run_downloader(job).state == JobState.SUCCEEDED
    archive = OriginalFile.objects.get(source_url__endswith="#archive")
    path = temporary_storage().path(archive.temp_key)
    body = bytearray(path.read_bytes())
    body[len(body) // 2] ^= 0xFF
    path.write_bytes(bytes(body))
    processor = run_processor(ProcessorJob.objects.get())
    assert processor.state == JobState.FAILED
    assert archive.filename in processor.failure_reason
    assert list(permanent_storage().list("processor/")) == []
    assert ComputedFile.objects.count() == 0
    run.refresh_state()
    assert run.state == "archiving"


def test_on_s3_the_server_copies_the_archive_and_the_job_never_reads_the_temporary_one(
    s3_storage, refinery_dirs, run_folder
):
    """The S3 calls the processor makes are watched with botocore's own event
    hooks on the client it uses."""
    from common.storage import s3_client

    _run, job = make_run_rows(run_folder, fastq=False)
    assert run_downloader(job).state == JobState.SUCCEEDED
    archive = OriginalFile.objects.get(source_url__endswith="#archive")
    calls: list[tuple[str, str]] = []

    def record(model, params, **_):
        calls.append((model.name, params.get("Key", "")))

    events = s3_client().meta.events
    events.register("provide-client-params.s3.*", record)
    try:
        processor = run_processor(ProcessorJob.objects.get())
    finally:
        events.unregister("provide-client-params.s3.*", record)
    assert processor.state == JobState.SUCCEEDED, processor.failure_reason
    stored = ComputedFile.objects.get(format="tar.zst")
    assert ("CopyObject", f"permanent/{stored.key}") in calls
    assert ("GetObject", f"temp/{archive.temp_key}") not in calls
    assert ("GetObject", f"permanent/{stored.key}") in calls  # the verification
    assert storage_at(f"s3://{s3_storage}/permanent").size(stored.key) == stored.size


# --- manage.py runs -----------------------------------------------------------------------


def test_runs_list_and_show(refinery_dirs, run_folder):
    _run, job = make_run_rows(run_folder)
    run_downloader(job)
    run_processor(ProcessorJob.objects.get(pipeline="illumina_run_archive"))
    other = SequencingRun.objects.create(platform="illumina", run_id="230102_A00001_0001_AH1",
                                         location="/runs/x", instrument_id="A00001")  # fmt: skip
    table = io.StringIO()
    call_command("runs", "list", stdout=table)
    assert "RUN" in table.getvalue() and RUN_ID in table.getvalue()
    listed = io.StringIO()
    call_command("runs", "list", "--state", "archived", "--json", stdout=listed)
    assert [r["run_id"] for r in json.loads(listed.getvalue())] == [RUN_ID]
    listed = io.StringIO()
    call_command("runs", "list", "--instrument", "A00001", "--json", stdout=listed)
    assert [r["run_id"] for r in json.loads(listed.getvalue())] == [other.run_id]
    listed = io.StringIO()
    call_command("runs", "list", "--since", "1h", "--json", stdout=listed)
    assert len(json.loads(listed.getvalue())) == 2

    shown = io.StringIO()
    call_command("runs", "show", RUN_ID, "--json", stdout=shown)
    detail = json.loads(shown.getvalue())
    assert detail["state"] == "archived"
    assert [h["new_state"] for h in detail["history"]] == ["complete", "archiving", "archived"]
    assert detail["history"][2]["job"].startswith("processor:")
    assert {b["variant"] for b in detail["batches"]} == {"archive", "fastq"}
    assert {j["what"] for j in detail["jobs"]} == {"illumina_run", "illumina_run_archive",
                                                   "bcl2fastq"}  # fmt: skip
    assert {r["format"] for r in detail["results"]} == {"tar.zst", "json"}
    text = io.StringIO()
    call_command("runs", "show", RUN_ID, stdout=text)
    assert "history:" in text.getvalue() and "archiving" in text.getvalue()


def test_runs_restore_errors_say_what_to_do(refinery_dirs, run_folder, tmp_path):
    run, job = make_run_rows(run_folder)
    with pytest.raises(CommandError, match="there is no run 'nope'"):
        call_command("runs", "restore", "nope", str(tmp_path / "d"))
    with pytest.raises(CommandError, match="is complete and has no verified archive yet"):
        call_command("runs", "restore", RUN_ID, str(tmp_path / "d"))
    run_downloader(job)
    run_processor(ProcessorJob.objects.get(pipeline="illumina_run_archive"))
    full = tmp_path / "full"
    full.mkdir()
    (full / "mine.txt").write_text("keep")
    with pytest.raises(CommandError, match="is not an empty folder"):
        call_command("runs", "restore", RUN_ID, str(full))
    assert [p.name for p in full.iterdir()] == ["mine.txt"]
    with pytest.raises(CommandError, match="cannot read 'yesterday' as a time"):
        call_command("runs", "list", "--since", "yesterday")
    assert BatchStatus.PROCESSED in set(run.batches.values_list("status", flat=True))
