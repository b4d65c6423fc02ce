"""A Nomad task that ends before its job starts (issue 9, item 13): the Foreman reads
the allocation's task events and the end of its stderr from Nomad and records them,
bounded and with secrets masked, as the job's failure reason.

The stand-in runs each child as a real process; `command_rewriter` replaces the
image's `manage.py run_job` with a script that fails the way a broken task does.
"""

from __future__ import annotations

import sys
import time
from io import StringIO

import nomad
import pytest
from django.core.management import call_command

from common.models import JobState, ProcessorJob
from common.models.choices import JobKind
from demo.nomad_standin import NomadStandin, fake_node
from foreman.passes import LOST_REASON, NEVER_STARTED, Foreman
from runner.dispatch import send_job_now
from tests.nomad.conftest import BIG_NODE, use_standin
from tests.nomad.test_secrets import CLUSTER_ENV, SECRET_VALUES

pytestmark = pytest.mark.django_db

# Writes a lot to stderr (secrets among it), then its last words, and exits 3.
NOISY_DEATH = (
    "import os, sys\n"
    "for i in range(2000): print(f'noise line {i}', file=sys.stderr)\n"
    "print('DATABASE_URL=' + os.environ['DATABASE_URL'], file=sys.stderr)\n"
    'print(\'config: {"password": "hunter2-the-secret"}\', file=sys.stderr)\n'
    "print('token ' + os.environ['DJANGO_SECRET_KEY'], file=sys.stderr)\n"
    "print('\\x1b[31mRuntimeError: the refinery cannot start\\x1b[0m', file=sys.stderr)\n"
    "sys.exit(3)\n"
)


def replace_run_job(*argv: str):
    def rewrite(command: list[str]) -> list[str]:
        return list(argv) if command[:2] == ["python", "manage.py"] else command

    return rewrite


@pytest.fixture
def cluster(settings, monkeypatch):
    """A stand-in whose children run what a test says, with every refinery job
    registered by `manage.py nomad register` (secrets through variables)."""
    standin = NomadStandin(nodes=[fake_node(**BIG_NODE)], time_scale=0.01, host_env={})
    with standin:
        use_standin(settings, standin)
        for name, value in CLUSTER_ENV.items():
            monkeypatch.setenv(name, value)
        call_command("nomad", "register", stdout=StringIO(), stderr=StringIO())
        yield standin
        assert standin.internal_errors == []


def dispatch_and_judge(cluster: NomadStandin, settings) -> ProcessorJob:
    job = ProcessorJob.objects.create(pipeline="smoke_test")
    assert send_job_now(job)
    job.refresh_from_db()
    cluster.wait_for_job(job.dispatch_id, "dead", timeout=30)
    settings.REFINERY_HEARTBEAT_LEASE_S = 1
    time.sleep(1.1)
    report = Foreman(outbox_grace_s=0).run_pass()
    assert report[f"{JobKind.PROCESSOR} lost"] == 1
    job.refresh_from_db()
    assert job.state == JobState.FAILED and job.start_time is None
    return job


def test_exit_code_and_the_end_of_stderr_bounded_and_masked(cluster, settings):
    cluster.command_rewriter = replace_run_job(sys.executable, "-c", NOISY_DEATH)
    job = dispatch_and_judge(cluster, settings)
    reason = job.failure_reason
    [alloc] = nomad.Nomad(address=cluster.address).job.get_allocations(job.dispatch_id)
    assert reason.startswith(
        f"{NEVER_STARTED}: exit code 3 (allocation {alloc['ID'][:8]}, task processor on node "
        f"{alloc['NodeName']}); its stderr ends:\n"
    )
    assert reason.endswith("\nRuntimeError: the refinery cannot start")  # no colour codes
    assert "noise line 1999" in reason and "noise line 1000" not in reason
    assert len(reason) < 2200
    for secret in (*SECRET_VALUES, "hunter2-the-secret"):
        assert secret not in reason
    assert "DATABASE_URL=********" in reason
    assert job.exit_code == 3
    # Nomad was asked the way the reference says.
    logs = [r for r in cluster.requests if r["path"].startswith("/v1/client/fs/logs/")]
    assert logs[-1]["path"] == f"/v1/client/fs/logs/{alloc['ID']}"
    assert logs[-1]["query"] == {
        "task": "processor",
        "type": "stderr",
        "plain": "True",
        "origin": "end",
        "offset": "4096",
        "follow": "False",
    }
    assert any(r["path"] == f"/v1/allocation/{alloc['ID']}" for r in cluster.requests)


def test_a_task_the_driver_cannot_start(cluster, settings):
    cluster.command_rewriter = replace_run_job("/nonexistent/refinery/python", "manage.py")
    job = dispatch_and_judge(cluster, settings)
    assert job.failure_reason.startswith(
        f"{NEVER_STARTED}: the task driver failed: failed to launch command with executor: "
    )
    assert "/nonexistent/refinery/python" in job.failure_reason
    assert job.exit_code is None


def test_a_template_that_cannot_be_rendered(cluster, settings):
    client = nomad.Nomad(address=cluster.address)
    path = "nomad/jobs/REFINERY_PROCESSOR_1024"
    items = client.variable.get_variable(path)["Items"]
    del items["DATABASE_URL"]  # as if someone edited the variable by hand
    client.variable.create_variable(path, {"Items": items})
    job = dispatch_and_judge(cluster, settings)
    assert job.failure_reason.startswith(f"{NEVER_STARTED}: Template failed: ")
    assert 'map has no entry for key "DATABASE_URL"' in job.failure_reason
    assert "its stderr ends" not in job.failure_reason  # it never ran


def test_a_child_nomad_forgot_keeps_the_plain_lost_reason(cluster, settings):
    cluster.command_rewriter = replace_run_job(sys.executable, "-c", "raise SystemExit(2)")
    job = ProcessorJob.objects.create(pipeline="smoke_test")
    assert send_job_now(job)
    job.refresh_from_db()
    cluster.wait_for_job(job.dispatch_id, "dead", timeout=30)
    cluster.gc(job.dispatch_id)
    settings.REFINERY_HEARTBEAT_LEASE_S = 1
    time.sleep(1.1)
    Foreman(outbox_grace_s=0).run_pass()
    job.refresh_from_db()
    assert job.failure_reason == LOST_REASON


# --- other ways a task died or stalled without a word ------------------------------------


@pytest.fixture
def idle_cluster(idle_standin, monkeypatch):
    """The idle stand-in (no processes: tasks run until finished by hand) with every
    refinery job and variable registered."""
    from runner.nomad.register import register_all
    from runner.nomad.specs import all_specs

    for name, value in CLUSTER_ENV.items():
        monkeypatch.setenv(name, value)
    register_all(all_specs())
    return idle_standin


def test_a_started_job_killed_for_memory_is_retried_with_more(idle_cluster, settings):
    job = ProcessorJob.objects.create(pipeline="smoke_test", ram_mb=1024)
    assert send_job_now(job)
    job.refresh_from_db()
    [alloc] = idle_cluster.allocations(job.dispatch_id)
    assert job.mark_started(f"nomad:{alloc['ID']}", "1", job.dispatch_id)  # as run_job does
    idle_cluster.finish_allocation(job.dispatch_id, 137, signal_number=9, oom_killed=True)
    settings.REFINERY_HEARTBEAT_LEASE_S = 1
    time.sleep(1.1)
    report = Foreman(outbox_grace_s=0).run_pass()
    assert report[f"{JobKind.PROCESSOR} worker lost"] == 1
    job.refresh_from_db()
    assert job.failure_reason.startswith(
        f"worker lost: exit code 137, signal 9, killed for lack of memory (OOM) (allocation "
        f"{alloc['ID'][:8]}, task processor on node "
    )
    assert job.exit_code == 137
    assert job.retry.ram_mb == 2048  # the next step of the processor's RAM ladder


def test_a_task_waiting_for_a_variable_that_is_gone_is_failed(idle_cluster, settings):
    client = nomad.Nomad(address=idle_cluster.address)
    client.variable.delete_variable("nomad/jobs/REFINERY_PROCESSOR_1024")
    job = ProcessorJob.objects.create(pipeline="smoke_test")
    assert send_job_now(job)
    job.refresh_from_db()
    [alloc] = idle_cluster.allocations(job.dispatch_id)
    assert alloc["ClientStatus"] == "pending"  # Nomad would wait for ever
    settings.REFINERY_HEARTBEAT_LEASE_S = 1
    time.sleep(1.1)
    report = Foreman(outbox_grace_s=0).run_pass()
    assert report[f"{JobKind.PROCESSOR} unplaceable"] == 1
    job.refresh_from_db()
    assert (job.state, job.no_retry) == (JobState.FAILED, True)
    assert job.failure_reason == (
        "its Nomad task cannot start: Missing: "
        "nomad.var.block(nomad/jobs/REFINERY_PROCESSOR_1024@default.global) "
        f"(allocation {alloc['ID'][:8]}, task processor on node {alloc['NodeName']}): "
        "write the job's variables with `manage.py nomad register`"
    )
    assert idle_cluster.job(job.dispatch_id) is None  # stopped
