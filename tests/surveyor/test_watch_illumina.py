"""`manage.py watch illumina_runs`: the command runs as a real process with real
inotify on a temporary folder. Its rescan interval is 300 s, far beyond each
test, so what it records within the test's wait came from inotify events (and
the wake it schedules for the end of a marker's grace period)."""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import pytest

from common.models import Batch, JobState, SurveyJob
from common.models.runs import RunState, SequencingRun
from demo.illumina_run import add_sample_sheet, finish_run, write_run_folder

pytestmark = pytest.mark.django_db(transaction=True)

# How long to wait for something the watcher should do within seconds, before
# calling it broken (a bound on a hang, not a measure of speed).
PATIENCE_S = 30


def wait_for(condition, what: str, output: Path):
    deadline = time.monotonic() + PATIENCE_S
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"the watcher did not {what}; it said:\n{output.read_text()}")


def run_state(run_id: str) -> str | None:
    return SequencingRun.objects.filter(run_id=run_id).values_list("state", flat=True).first()


def finished_surveys() -> int:
    return SurveyJob.objects.filter(state__in=[JobState.SUCCEEDED, JobState.FAILED]).count()


@pytest.fixture
def watch(tmp_path, start_manage):
    """Start `manage.py watch illumina_runs <dir>` with a grace period of `grace`."""
    output = tmp_path / "watch.out"

    def start(folder: Path, grace: float):
        stream = open(output, "w")  # noqa: SIM115 - the process writes it until the test ends
        process = start_manage(
            "watch", "illumina_runs", folder, "--interval", "300",
            env={"REFINERY_ILLUMINA_GRACE_S": str(grace), "PYTHONUNBUFFERED": "1"},
            stdout=stream,
        )  # fmt: skip
        return process, output

    return start


def test_markers_are_seen_within_seconds_even_after_the_folder_went_and_came_back(
    tmp_path, refinery_dirs, watch
):
    runs = tmp_path / "sequencers"
    runs.mkdir()
    folder = write_run_folder(runs, "novaseq6000", number=1)
    process, output = watch(runs, grace=0)
    wait_for(lambda: run_state(folder.name) == RunState.SEQUENCING, "record the run", output)
    wait_for(lambda: finished_surveys() == 1, "finish its first survey", output)
    finish_run(folder, "novaseq6000")
    wait_for(lambda: finished_surveys() == 2, "survey once more", output)
    assert run_state(folder.name) == RunState.COMPLETE
    assert SurveyJob.objects.count() == 2
    assert set(Batch.objects.values_list("variant", flat=True)) == {"archive"}
    # A sample sheet that appears later gives the fastq batch.
    add_sample_sheet(folder, "novaseq6000")
    wait_for(lambda: Batch.objects.filter(variant="fastq").exists(), "see the sheet", output)
    # A new run folder made after the watch started is watched too.
    second = write_run_folder(runs, "miseq", number=2)
    wait_for(lambda: run_state(second.name) == RunState.SEQUENCING, "see a new run", output)
    finish_run(second, "miseq")
    wait_for(lambda: run_state(second.name) == RunState.COMPLETE, "see its marker", output)
    # The watched folder goes away and comes back (a remount): watched again.
    shutil.rmtree(runs)
    wait_for(lambda: "not there (waiting for it to come back)" in output.read_text(), "say", output)
    runs.mkdir()
    third = write_run_folder(runs, "nextseq2000", number=5)
    wait_for(lambda: run_state(third.name) == RunState.SEQUENCING, "see it again", output)
    finish_run(third, "nextseq2000")
    wait_for(lambda: run_state(third.name) == RunState.COMPLETE, "see the marker", output)
    assert process.poll() is None
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    said = output.read_text()
    assert "watch illumina_runs: stopped (SIGTERM)" in said
    assert f"{folder.name}: sequencing, no CopyComplete.txt yet" in said


def test_a_marker_in_its_grace_period_is_looked_at_again_when_it_ends(
    tmp_path, refinery_dirs, watch
):
    runs = tmp_path / "sequencers"
    runs.mkdir()
    folder = write_run_folder(runs, "novaseqx", number=3)
    process, output = watch(runs, grace=2)
    wait_for(lambda: finished_surveys() == 1, "finish its first survey", output)
    finish_run(folder, "novaseqx")
    wait_for(lambda: "CopyComplete.txt old enough at" in output.read_text(), "wait", output)
    assert run_state(folder.name) == RunState.SEQUENCING
    wait_for(lambda: finished_surveys() == 2, "look again", output)
    assert run_state(folder.name) == RunState.COMPLETE
    # The wait itself cost no survey: the first, then the one that found it complete.
    assert SurveyJob.objects.count() == 2
    process.send_signal(signal.SIGINT)
    assert process.wait(30) == 0


def test_a_database_outage_does_not_end_the_watch(tmp_path, refinery_dirs, start_manage):
    """The database is a closed port on loopback: the watcher says so and waits."""
    runs = tmp_path / "sequencers"
    runs.mkdir()
    write_run_folder(runs, "miseq", number=6)
    output = tmp_path / "watch.out"
    with open(output, "w") as stream:
        process = start_manage(
            "watch", "illumina_runs", runs,
            env={"DATABASE_URL": "postgres://x:y@127.0.0.1:1/none", "PYTHONUNBUFFERED": "1"},
            stdout=stream,
        )  # fmt: skip
        wait_for(lambda: "database unavailable" in output.read_text(), "say so", output)
        assert process.poll() is None
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    assert "surveying again in 10 s" in output.read_text()
