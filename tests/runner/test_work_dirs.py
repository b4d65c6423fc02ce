"""A job writes and deletes only inside its own work directory, and removes
only the directory it created."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.models import Batch, JobState, ProcessorJob
from runner.pipeline import JobError, run_pipeline
from runner.steps import prepare_job_dir, start_job
from runner.work_dirs import job_work_dir, work_path
from tests.attacks import make_sentinel, snapshot


@pytest.fixture
def running_job(db, refinery_dirs):
    batch = Batch.objects.create(
        source="local_files", accession="a.txt", pipeline_required="smoke_test"
    )
    job = ProcessorJob.objects.create(pipeline="smoke_test")
    job.batches.add(batch)
    job.mark_started("test", "1")
    return job


def test_work_path_joins_plain_parts(tmp_path):
    assert work_path(tmp_path, "raw", "file-1", "a.fa.gz") == tmp_path / "raw/file-1/a.fa.gz"


@pytest.mark.parametrize("parts", [("..", "x"), ("raw", "../../x"), ("/etc/passwd",), ("a\0b",)])
def test_work_path_refuses_what_leaves_the_directory(tmp_path, parts):
    with pytest.raises(JobError) as error:
        work_path(tmp_path / "work", *parts)
    assert error.value.no_retry and "work directory" in error.value.reason


def test_work_path_refuses_a_link_out_of_the_directory(tmp_path):
    work, outside = tmp_path / "work", tmp_path / "outside"
    work.mkdir()
    outside.mkdir()
    (work / "raw").symlink_to(outside, target_is_directory=True)
    with pytest.raises(JobError, match="outside"):
        work_path(work, "raw", "a.txt")


def test_end_job_removes_only_the_directory_the_job_made(running_job, tmp_path):
    """A step that points work_dir elsewhere does not get that folder deleted."""
    sentinel = make_sentinel(tmp_path)
    before = snapshot(sentinel)

    def point_elsewhere(context):
        context["work_dir"] = sentinel
        return context

    run_pipeline(running_job, [start_job, point_elsewhere])
    assert snapshot(sentinel) == before


def test_a_leftover_link_at_the_jobs_directory_is_replaced_not_followed(running_job, tmp_path):
    sentinel = make_sentinel(tmp_path)
    before = snapshot(sentinel)
    path = job_work_dir(running_job.kind, running_job.pk)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(sentinel, target_is_directory=True)

    made = []

    def note(context):
        made.append(context["work_dir"])
        (context["work_dir"] / "scratch.txt").write_text("scratch")
        context["success"] = False
        context["failure_reason"] = "stop here"
        return context

    run_pipeline(running_job, [start_job, prepare_job_dir, note])
    running_job.refresh_from_db()
    assert running_job.failure_reason == "stop here"
    assert made == [path] and not path.exists()
    assert snapshot(sentinel) == before and sentinel.is_dir()
    assert not Path(sentinel / "scratch.txt").exists()
    assert running_job.state == JobState.FAILED
