"""The nanopore_runs source: MinKNOW run folders (made with demo/nanopore_run.py:
real pod5 files written by the `pod5` package, synthetic signal) become
sequencing runs and batches of complete pod5 files, each file in exactly one
batch, whatever the folder holds and however many surveys look at once."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
from collections import Counter
from pathlib import Path

import pytest
from django.core.management import call_command

from common.models import (
    Batch,
    DownloaderJob,
    JobState,
    OriginalFile,
    RunState,
    SequencingRun,
    SurveyJob,
)
from demo.nanopore_run import (
    add_pod5,
    complete_partial_pod5,
    finish_run,
    make_nanopore_run,
    new_run,
    write_partial_pod5,
)
from surveyor.models import Pod5File
from surveyor.nanopore_runs import NanoporeRunsSurveyor
from surveyor.nanopore_scan import scan_nanopore_root
from tests.nanopore import survey_nanopore as survey

pytestmark = pytest.mark.django_db(transaction=True)


def batched_files() -> dict[str, list[str]]:
    """Each batch (by number) and the pod5 files in it."""
    return {
        b.variant: sorted(f.filename for f in b.original_files.all())
        for b in Batch.objects.filter(source="nanopore_runs").order_by("id")
    }


def test_a_running_run_surveyed_three_times_puts_each_file_in_exactly_one_batch(
    tmp_path, refinery_dirs, settings
):
    settings.REFINERY_POD5_BATCH_FILES = 2
    run = new_run(tmp_path / "minknow")
    for _ in range(3):
        add_pod5(run)
    partial = write_partial_pod5(run)  # MinKNOW is still writing it

    first = survey(tmp_path / "minknow")
    assert first.state == JobState.SUCCEEDED
    recorded = SequencingRun.objects.get()
    assert recorded.run_id == run.protocol_run_id  # from the pod5 files' run info
    assert recorded.state == RunState.SEQUENCING
    assert (recorded.flowcell, recorded.instrument_id) == ("FAX00001", "MN00001")
    assert recorded.metadata["sample"] == "demo_sample"
    assert recorded.metadata["kit"] == "SQK-LSK114"
    assert recorded.run_date.isoformat() == "2026-01-05T09:30:00+00:00"
    assert list(recorded.history.values_list("old_state", "new_state")) == [("", "sequencing")]
    # Seen once: no file's size is known to be steady yet.
    assert Batch.objects.count() == 0
    assert Pod5File.objects.count() == 4

    complete_partial_pod5(run, partial)
    add_pod5(run)  # appears between the surveys: seen once only
    survey(tmp_path / "minknow")
    # The three files seen twice at one size are complete; the one finished since
    # changed size, and the new one is new: they wait. Batches of two: one full.
    assert batched_files() == {"1": [run.pod5_files[0].name, run.pod5_files[1].name]}

    add_pod5(run)
    finish_run(run)  # the run ends: what is left goes in, a partial batch closed
    third = survey(tmp_path / "minknow")
    assert third.state == JobState.SUCCEEDED
    batches = batched_files()
    everything = [name for names in batches.values() for name in names]
    assert sorted(everything) == sorted(p.name for p in run.pod5_files)
    assert len(everything) == len(set(everything)) == 6
    assert [len(names) for names in batches.values()] == [2, 2, 2]
    recorded.refresh_from_db()
    assert recorded.state == RunState.COMPLETE
    assert recorded.metadata["complete"] is True
    assert recorded.metadata["pod5_files_in_final_dest"] == "6"
    assert recorded.instrument_type == "MINION"

    # Every batch: the run's id, its number, basecalling, its own pod5_batch job.
    for batch in Batch.objects.all():
        assert batch.accession == run.protocol_run_id
        assert batch.pipeline_required == "basecalling"
        assert batch.sequencing_run_id == recorded.pk
        assert [j.downloader_task for j in batch.downloader_jobs.all()] == ["pod5_batch"]
    assert DownloaderJob.objects.count() == 3
    assert set(DownloaderJob.objects.values_list("state", flat=True)) == {JobState.QUEUED}

    survey(tmp_path / "minknow")  # nothing new: nothing added
    assert Batch.objects.count() == 3 and OriginalFile.objects.count() == 6


def test_a_finished_run_is_batched_at_once_with_its_last_batch_partial(
    tmp_path, refinery_dirs, settings
):
    settings.REFINERY_POD5_BATCH_FILES = 10
    run = make_nanopore_run(tmp_path / "minknow", files=12)
    job = survey(tmp_path / "minknow")
    assert job.state == JobState.SUCCEEDED
    assert [len(files) for files in batched_files().values()] == [10, 2]
    recorded = SequencingRun.objects.get()
    assert recorded.state == RunState.COMPLETE
    assert list(recorded.history.values_list("new_state", flat=True)) == ["sequencing", "complete"]
    assert recorded.location == str(run.folder)
    first = Batch.objects.get(variant="1")
    assert first.metadata["pod5_paths"][:2] == [
        f"pod5/{run.pod5_name(0)}",
        f"pod5/{run.pod5_name(1)}",
    ]


def test_two_surveys_at_once_record_each_file_once(tmp_path, refinery_dirs, settings, start_manage):
    """Two `manage.py survey` processes over one finished run, on this database."""
    settings.REFINERY_POD5_BATCH_FILES = 2
    make_nanopore_run(tmp_path / "minknow", files=14, reads=2)
    parameters = {"paths": [str(tmp_path / "minknow")]}
    jobs = [SurveyJob.objects.create(source="nanopore_runs", parameters=parameters) for _ in "ab"]
    environment = {"REFINERY_POD5_BATCH_FILES": "2"}
    racing = [start_manage("run_job", "survey", job.pk, env=environment) for job in jobs]
    outputs = [process.communicate(timeout=120)[0] for process in racing]
    assert all(p.returncode == 0 for p in racing), outputs
    assert SequencingRun.objects.count() == 1
    batches = batched_files()
    everything = [name for names in batches.values() for name in names]
    assert len(everything) == len(set(everything)) == 14
    assert sorted(batches) == sorted(str(n) for n in range(1, 8))
    assert Pod5File.objects.filter(batch__isnull=True).count() == 0
    assert DownloaderJob.objects.count() == 7


def test_hostile_folders_are_reported_and_skipped_and_the_rest_goes_on(tmp_path, refinery_dirs):
    root = tmp_path / "minknow"
    good = make_nanopore_run(root, files=2, sample="good", seed=2)
    # A run whose report is not JSON: said, and the final summary still says the rest.
    bad_json = make_nanopore_run(root, files=1, sample="bad_json", seed=3, flowcell="FAX00003")
    next(bad_json.folder.glob("report_*.json")).write_text('{"protocol_run_info": {')
    # Links out of the root: a pod5 file, and a whole run folder.
    outside = make_nanopore_run(tmp_path / "elsewhere", files=1, seed=4, flowcell="FAX00004")
    (good.pod5_folder / "FAX00001_link_0.pod5").symlink_to(outside.pod5_files[0])
    (root / "demo_group" / "linked").mkdir()
    (root / "demo_group" / "linked" / outside.folder.name).symlink_to(outside.folder)
    # Files the survey cannot read, even as root: a socket and a FIFO named .pod5.
    listener = socket.socket(socket.AF_UNIX)
    with contextlib.chdir(good.pod5_folder):  # a socket's path must be short
        listener.bind("FAX00001_socket_9.pod5")
    os.mkfifo(good.pod5_folder / "FAX00001_fifo_8.pod5")
    # Names MinKNOW does not write.
    (root / "demo_group" / "good" / "not_a_run_folder").mkdir()
    (good.pod5_folder / "notes.txt").write_text("hello\n")
    (good.pod5_folder / "bad\nname.pod5").write_bytes(b"x")

    try:
        scan = scan_nanopore_root(root)
        reasons = {Path(s.path.strip("'")).name: s.why for s in scan.skipped}
        assert "not JSON" in reasons[next(bad_json.folder.glob("report_*.json")).name]
        assert "outside" in reasons["FAX00001_link_0.pod5"]
        assert "outside" in reasons[outside.folder.name]
        assert "cannot read it" in reasons["FAX00001_socket_9.pod5"]
        assert "not a regular file" in reasons["FAX00001_fifo_8.pod5"]
        assert "not a MinKNOW run folder name" in reasons["not_a_run_folder"]
        assert "not a .pod5 file" in reasons["notes.txt"]
        assert any("control character" in s.why for s in scan.skipped)

        output = call_command_output("survey", "nanopore_runs", str(root))
    finally:
        listener.close()
    assert f"skipped {good.pod5_folder / 'FAX00001_link_0.pod5'}: a link to" in output
    assert "not JSON" in output
    # The socket and the FIFO are not counted: the summary's 2 files against the 2 read.
    assert "pod5_files_in_final_dest" not in output
    runs = {r.flowcell: r for r in SequencingRun.objects.all()}
    assert set(runs) == {"FAX00001", "FAX00003"}  # the linked run is not ours
    assert runs["FAX00003"].run_id == bad_json.protocol_run_id
    assert runs["FAX00003"].metadata["kit"] == "SQK-LSK114"  # from the final summary
    files = sorted(OriginalFile.objects.values_list("filename", flat=True))
    assert files == sorted(p.name for p in good.pod5_files + bad_json.pod5_files)
    for original in OriginalFile.objects.all():
        assert Path(original.source_url.removeprefix("file://")).is_relative_to(root)


def test_a_truncated_pod5_in_a_finished_run_is_reported_and_not_batched(tmp_path, refinery_dirs):
    run = new_run(tmp_path / "minknow")
    add_pod5(run)
    truncated = add_pod5(run)
    truncated.write_bytes(truncated.read_bytes()[:-100])
    finish_run(run)
    output = call_command_output("survey", "nanopore_runs", str(tmp_path / "minknow"))
    assert f"skipped {truncated}: the run is complete but this pod5 file lacks its end " in output
    assert batched_files() == {"1": [run.pod5_files[0].name]}


def test_a_run_folder_given_itself_is_surveyed(tmp_path, refinery_dirs):
    run = make_nanopore_run(tmp_path / "minknow", files=1)
    survey(run.folder)
    assert SequencingRun.objects.get().metadata["protocol_group"] == "demo_group"
    assert Batch.objects.count() == 1


def call_command_output(*args) -> str:
    """`manage.py …` here, its output (the survey's child echoes its log)."""
    from io import StringIO

    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_the_scan_reads_no_metadata_file_that_is_a_link(tmp_path):
    run = make_nanopore_run(tmp_path / "minknow", files=1)
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"protocol_run_info": {"run_id": "stolen"}}))
    report = next(run.folder.glob("report_*.json"))
    report.unlink()
    report.symlink_to(secret)
    scan = scan_nanopore_root(tmp_path / "minknow")
    assert scan.runs[0].report is None
    assert any("cannot read it" in s.why for s in scan.skipped if s.path == str(report))
    assert Counter(r.protocol_run_id for r in scan.runs) == {run.protocol_run_id: 1}


def test_a_survey_that_dies_recording_a_batch_leaves_no_part_of_it(
    tmp_path, refinery_dirs, settings, monkeypatch
):
    """A batch, its files' claims, its files and its job are one transaction: a
    survey stopped inside it (here by an error on the batch's second file) leaves
    nothing of that batch, and the next survey batches those files."""
    settings.REFINERY_POD5_BATCH_FILES = 2
    run = make_nanopore_run(tmp_path / "minknow", files=4)
    real_add_file = NanoporeRunsSurveyor.add_file
    added = []

    def dies_on_the_second_file(found):
        added.append(found.filename)
        if len(added) == 2:
            raise RuntimeError("killed")
        return real_add_file(found)

    monkeypatch.setattr(NanoporeRunsSurveyor, "add_file", staticmethod(dies_on_the_second_file))
    job = SurveyJob.objects.create(
        source="nanopore_runs", parameters={"paths": [str(tmp_path / "minknow")]}
    )
    assert job.mark_started("test-worker", "test")
    NanoporeRunsSurveyor(job).survey()
    job.refresh_from_db()
    assert job.state == JobState.FAILED and "killed" in job.failure_reason
    assert not Batch.objects.exists() and not OriginalFile.objects.exists()
    assert not DownloaderJob.objects.exists()
    assert not Pod5File.objects.filter(batch__isnull=False).exists()

    monkeypatch.undo()
    survey(tmp_path / "minknow")
    assert [len(files) for files in batched_files().values()] == [2, 2]
    assert sorted(OriginalFile.objects.values_list("filename", flat=True)) == sorted(
        p.name for p in run.pod5_files
    )


def test_a_copy_of_a_recorded_run_in_another_folder_is_left_out(tmp_path, refinery_dirs):
    run = make_nanopore_run(tmp_path / "minknow", files=2)
    survey(tmp_path / "minknow")
    copy = tmp_path / "copy" / "demo_group" / "demo_sample" / run.folder.name
    shutil.copytree(run.folder, copy)
    output = call_command_output("survey", "nanopore_runs", str(tmp_path / "copy"))
    assert f"skipped {copy}: run {run.protocol_run_id} was found in {run.folder} before" in output
    assert SequencingRun.objects.get().location == str(run.folder)
    assert Pod5File.objects.count() == 2 and Batch.objects.count() == 1
    for original in OriginalFile.objects.all():
        assert original.source_url.startswith(f"file://{run.folder}/")


def test_a_finished_run_missing_files_its_summary_counts_is_noted(tmp_path, refinery_dirs):
    run = make_nanopore_run(tmp_path / "minknow", files=3)
    run.pod5_files[1].unlink()  # moved away after the run
    output = call_command_output("survey", "nanopore_runs", str(tmp_path / "minknow"))
    assert (
        f"note: {run.folder}: final_summary_FAX00001_{run.short_id}_"
        f"{run.acquisition_id[:8]}.txt counts 3 pod5 file(s) in pod5_files_in_final_dest; "
        "the survey found 2"
    ) in output
    assert Batch.objects.get().original_files.count() == 2


def test_values_a_run_s_files_should_not_hold_are_not_recorded(tmp_path, refinery_dirs):
    """A final summary whose run id is a path, a report with a huge flow cell id
    holding a control character: the run is recorded from what is sound."""
    run = make_nanopore_run(tmp_path / "minknow", files=1)
    summary = next(run.folder.glob("final_summary_*.txt"))
    summary.write_text(
        summary.read_text()
        .replace(f"protocol_run_id={run.protocol_run_id}", "protocol_run_id=../../etc/passwd")
        .replace("flow_cell_id=FAX00001", "flow_cell_id=")
    )
    report = next(run.folder.glob("report_*.json"))
    document = json.loads(report.read_text())
    document["protocol_run_info"]["flow_cell"]["flow_cell_id"] = "F\x1b[2J" + "X" * 10_000
    document["protocol_run_info"]["device"]["device_type"] = "M" * 500
    report.write_text(json.dumps(document))
    survey(tmp_path / "minknow")
    recorded = SequencingRun.objects.get()
    assert recorded.run_id == run.protocol_run_id  # from the report
    assert recorded.flowcell == "FAX00001"  # from the folder's name
    assert recorded.instrument_type == "M" * 64
    assert Batch.objects.get().accession == run.protocol_run_id
