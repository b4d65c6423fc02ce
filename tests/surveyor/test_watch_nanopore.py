"""`manage.py watch nanopore_runs`: the same watcher as for Illumina runs, with
the Nanopore scanner, as a real process with real inotify. Its rescan interval
is 300 s, far beyond the test, so what it records came from inotify events."""

from __future__ import annotations

import signal

import pytest

from common.models import Batch
from common.models.runs import RunState, SequencingRun
from demo.nanopore_run import add_pod5, finish_run, new_run
from tests.surveyor.test_watch_illumina import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_run_is_recorded_when_it_appears_and_completed_when_minknow_finishes(
    tmp_path, refinery_dirs, start_manage
):
    root = tmp_path / "minknow"
    root.mkdir()
    output = tmp_path / "watch.out"
    with open(output, "w") as stream:
        process = start_manage(
            "watch", "nanopore_runs", root, "--interval", "300",
            env={"PYTHONUNBUFFERED": "1"}, stdout=stream,
        )  # fmt: skip
        run = new_run(root)  # group/sample/run folders appear while it watches
        add_pod5(run)
        wait_for(
            lambda: SequencingRun.objects.filter(platform="nanopore").exists(),
            "record the new run",
            output,
        )
        recorded = SequencingRun.objects.get(platform="nanopore")
        assert recorded.run_id == run.protocol_run_id
        assert recorded.state == RunState.SEQUENCING
        finish_run(run)
        wait_for(
            lambda: SequencingRun.objects.filter(state=RunState.COMPLETE).exists(),
            "see the final summary",
            output,
        )
        wait_for(
            lambda: Batch.objects.filter(sequencing_run=recorded).exists(),
            "batch the finished run's pod5 file",
            output,
        )
        assert Batch.objects.filter(sequencing_run=recorded).count() == 1
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
