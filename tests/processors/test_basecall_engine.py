"""`manage.py basecall_engine`: engines in processes of their own pulling
basecalling work from a live refinery (pytest-django's `live_server`, on
PostgreSQL) over HTTP, as GPU servers outside the cluster do.

Dorado cannot be installed here (a download from its maker, and it needs a
GPU): the engines run the Dorado stand-in (tests/processors/standins/dorado),
which follows Dorado's command line and output and reads the real pod5 files
(written by the `pod5` package, synthetic signal). To kill an engine in the
middle of a job, its Dorado is a wrapper that runs the stand-in except on one
call, where it hangs; nothing else is replaced.
"""

from __future__ import annotations

import io
import signal
import sys
import time
from pathlib import Path

import pytest
from django.core.management import call_command

from common.models import Batch, BatchStatus, ComputedFile, JobState, ProcessorJob
from foreman.passes import Foreman
from tests.nanopore import DORADO_STANDIN, queued_basecalling_jobs

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres_only]

LEASE_S = 2


@pytest.fixture
def engine_refinery(tmp_path, refinery_dirs, settings, monkeypatch):
    """Basecalling jobs queued, a short keepalive lease, ASSIGNED folders in tmp."""
    for name in ("OOM_ONCE", "FILTER_EVERY", "LOSE_EVERY", "CALLS"):
        monkeypatch.delenv(f"DORADO_STANDIN_{name}", raising=False)
    settings.REFINERY_HEARTBEAT_LEASE_S = LEASE_S
    settings.REFINERY_ENGINE_ASSIGNED_DIR = tmp_path / "engines"
    return settings


def add_engine(name: str) -> str:
    out = io.StringIO()
    call_command("engines", "add", name, stdout=out, stderr=io.StringIO())
    return out.getvalue().strip()


def dorado_that_hangs(folder: Path, on_call: int) -> Path:
    """A `dorado` that is the stand-in, except that its `on_call`-th basecaller
    run hangs (after touching `folder/hung`) until it is killed."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "dorado"
    path.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = basecaller ] || exec "{sys.executable}" "{DORADO_STANDIN}" "$@"\n'
        f'n=$(cat "{folder}/count" 2>/dev/null || echo 0); n=$((n + 1))\n'
        f'echo $n > "{folder}/count"\n'
        f'if [ $n -eq {on_call} ]; then touch "{folder}/hung"; exec sleep 120; fi\n'
        f'exec "{sys.executable}" "{DORADO_STANDIN}" "$@"\n'
    )
    path.chmod(0o755)
    return path


def start_engine(start_manage, server: str, name: str, dorado: Path, tmp_path: Path, calls: Path):
    return start_manage(
        "basecall_engine", "--server", server, "--token", add_engine(name), "--name", name,
        "--dorado", dorado, "--poll", "0.1", "--work-dir", tmp_path / f"work-{name}",
        env={"DORADO_STANDIN_CALLS": str(calls)},
    )  # fmt: skip


def wait_for(condition, timeout: float, what: str, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


def test_two_engines_basecall_50_batches_once_each_and_a_killed_ones_batch_is_redone(
    engine_refinery, live_server, start_manage, tmp_path
):
    queued_basecalling_jobs(tmp_path / "minknow", files=50, reads=2, batch_files=1)
    assert ProcessorJob.objects.filter(state=JobState.QUEUED).count() == 50
    calls = tmp_path / "calls-steady.txt", tmp_path / "calls-doomed.txt"
    doomed_dorado = dorado_that_hangs(tmp_path / "doomed-bin", on_call=15)
    steady_dorado = dorado_that_hangs(tmp_path / "steady-bin", on_call=10**6)
    doomed = start_engine(start_manage, live_server.url, "doomed", doomed_dorado, tmp_path,
                          calls[1])  # fmt: skip
    steady = start_engine(start_manage, live_server.url, "steady", steady_dorado, tmp_path,
                          calls[0])  # fmt: skip

    # The doomed engine is in the middle of its 15th job: kill it, Dorado and all.
    wait_for(lambda: (tmp_path / "doomed-bin" / "hung").exists(), 120, "the doomed engine's job")
    lost = ProcessorJob.objects.get(worker_id="engine:doomed", state=JobState.RUNNING)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(10)

    def all_processed() -> bool:
        Foreman().run_pass()  # takes back the lost job once its keepalives are a lease old
        return not Batch.objects.exclude(status=BatchStatus.PROCESSED).exists()

    wait_for(all_processed, 180, "every batch basecalled", every=0.3)
    steady.send_signal(signal.SIGTERM)
    output, _ = steady.communicate(timeout=30)
    assert steady.returncode == 0, output
    assert "engine steady:" in output and "stopped" in output

    # Each batch basecalled exactly once: one Dorado run, one succeeded job, one result each.
    runs = sum(len(path.read_text().splitlines()) for path in calls if path.exists())
    assert runs == 50
    succeeded = ProcessorJob.objects.filter(state=JobState.SUCCEEDED)
    assert succeeded.count() == 50
    assert sorted(succeeded.values_list("batches", flat=True)) == sorted(
        Batch.objects.values_list("pk", flat=True)
    )
    assert ComputedFile.objects.count() == 50
    assert all(b.computed_files.count() == 1 for b in Batch.objects.all())
    by_engine = {w: succeeded.filter(worker_id=w).count() for w in ("engine:doomed",
                                                                    "engine:steady")}  # fmt: skip
    assert by_engine["engine:doomed"] == 14 and by_engine["engine:steady"] == 36

    # The killed engine's job: taken back as "engine lost", and done by the other engine.
    lost.refresh_from_db()
    assert lost.state == JobState.FAILED
    assert lost.failure_reason.startswith("engine lost")
    redo = ProcessorJob.objects.get(retried_job=lost)
    assert (redo.state, redo.worker_id) == (JobState.SUCCEEDED, "engine:steady")
    Foreman().run_pass()
    assert not list((tmp_path / "engines").iterdir())


def test_sigterm_stops_an_engine_and_its_job_goes_back_without_spending_a_retry(
    engine_refinery, live_server, start_manage, tmp_path
):
    queued_basecalling_jobs(tmp_path / "minknow", files=1, reads=2, batch_files=1)
    dorado = dorado_that_hangs(tmp_path / "bin", on_call=1)
    engine = start_engine(start_manage, live_server.url, "gpu1", dorado, tmp_path,
                          tmp_path / "calls.txt")  # fmt: skip
    wait_for(lambda: (tmp_path / "bin" / "hung").exists(), 60, "the engine's job")
    engine.send_signal(signal.SIGTERM)
    output, _ = engine.communicate(timeout=30)
    assert engine.returncode == 0, output
    assert "interrupted: engine stopped (SIGTERM)" in output
    job = ProcessorJob.objects.get()
    assert job.state == JobState.FAILED and job.interrupted
    assert job.failure_reason == "interrupted: engine gpu1: engine stopped (SIGTERM)"
    Foreman().run_pass()
    retry = ProcessorJob.objects.get(retried_job=job)
    assert (retry.state, retry.num_retries) == (JobState.QUEUED, 0)
    assert not list((tmp_path / "engines").iterdir())
