"""Supervising jobs that run in child processes.

Both `manage.py worker` and `manage.py run_job` run each job in a forked child:
the parent writes the job's heartbeat, enforces the wall-clock limit of its
kind, notices when the job was stopped from outside (the Foreman or an operator
failed it), captures the child's stdout and stderr into the job's log, and
records an outcome when the child dies without one. The child runs in its own
process group, so killing it kills the tools it started too, and it dies with
its parent, so a killed worker leaves no job running unsupervised.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connections

from common.models import Job, JobState
from common.storage import StorageError, permanent_storage
from runner.job_logs import log_key, spool_path

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
# How a child says it recorded its job's outcome, so the parent need not read the row.
EXIT_SUCCEEDED, EXIT_FAILED = 0, 1


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Ask Linux to send `sig` to this process when its parent dies."""
    # Not Linux: the heartbeat lease still catches an orphan.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, sig)


def exit_reason(status: int) -> str:
    """Why a child that recorded no outcome ended, from its wait status."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = str(number)
        reason = f"worker process killed by signal {number} ({name})"
        if number == signal.SIGKILL:
            reason += "; the kernel kills processes that run out of memory"
        return reason
    return f"worker process exited with code {os.WEXITSTATUS(status)} without recording an outcome"


def exit_code(status: int) -> int:
    """A wait status as a shell would report it: 128 + N when killed by signal N."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _write_streams_to_log() -> None:
    """Point Python's streams, and the console log handlers, at file descriptors
    1 and 2 (the log): the parent's may be something else (a test's captured
    output), and the log must get all the job prints and logs."""
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    loggers = [logging.getLogger(), *map(logging.getLogger, logging.root.manager.loggerDict)]
    for handler in {h for lg in loggers for h in getattr(lg, "handlers", [])}:
        if isinstance(handler, logging.StreamHandler) and not isinstance(
            handler, logging.FileHandler
        ):
            handler.setStream(sys.stderr)


def _still_running(job: Job) -> bool:
    return type(job).objects.filter(pk=job.pk, state=JobState.RUNNING).exists()


@dataclass
class Child:
    job: Job
    pid: int
    log_path: Path
    started: float = field(default_factory=time.monotonic)
    limit_s: int = 0
    stop_reason: str = ""  # set when we decided to stop it, and why
    interrupted: bool = False
    term_sent_at: float | None = None
    status: int | None = None  # wait status once reaped

    @property
    def recorded_outcome(self) -> bool:
        """The child ran its job to the end and recorded the outcome itself. A
        child that exited on its own did, even when it was about to be stopped
        (its job ended between a heartbeat and the next: the heartbeat found
        it finished); one that was killed did not."""
        return (
            self.status is not None
            and os.WIFEXITED(self.status)
            and os.WEXITSTATUS(self.status) in (EXIT_SUCCEEDED, EXIT_FAILED)
        )

    @property
    def succeeded(self) -> bool:
        return self.recorded_outcome and os.WEXITSTATUS(self.status) == EXIT_SUCCEEDED


class Supervisor:
    """Runs jobs in child processes and keeps their rows truthful."""

    def __init__(self, keep_spool: bool = False) -> None:
        self.keep_spool = keep_spool  # leave the local copy of each log (run_job echoes it)
        self.children: dict[int, Child] = {}
        self.finished: list[Child] = []  # reaped, outcome not yet recorded
        self.last_beat = 0.0
        self.beat_every = max(1.0, settings.REFINERY_HEARTBEAT_LEASE_S / 4)

    # --- starting -----------------------------------------------------------------------------

    def launch(self, job: Job) -> Child:
        """Run `job` (already marked running) in a new child process."""
        log_path = spool_path(job)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        job.set_log_location(str(log_path))
        limit = settings.REFINERY_RUNTIME_LIMITS_S[job.kind]
        # A forked child must not share the parent's database connections.
        connections.close_all()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            self._child_main(job, log_path)
        child = Child(job=job, pid=pid, log_path=log_path, limit_s=limit)
        self.children[pid] = child
        return child

    @staticmethod
    def _child_main(job: Job, log_path: Path) -> None:  # pragma: no cover - child process
        code = 3
        try:
            os.setpgid(0, 0)
            die_with_parent()
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(log, 1)
            os.dup2(log, 2)
            os.close(log)
            _write_streams_to_log()
            from runner.lifecycle import execute_job

            # The forked child has the parent's job object: the row is not read again.
            code = EXIT_SUCCEEDED if execute_job(job) else EXIT_FAILED
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    # --- watching -----------------------------------------------------------------------------

    def poll(self) -> None:
        """Reap, enforce limits, beat, and record outcomes. Database errors
        propagate; calling poll again later finishes what was left."""
        self._reap()
        self._enforce_limits()
        if time.monotonic() - self.last_beat >= self.beat_every:
            self._beat()
        self._record_finished()

    def _reap(self) -> None:
        for pid, child in list(self.children.items()):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done, status = pid, 0
            if done:
                child.status = status
                del self.children[pid]
                self.finished.append(child)

    def _enforce_limits(self) -> None:
        now = time.monotonic()
        for child in self.children.values():
            if not child.stop_reason and now - child.started > child.limit_s:
                child.stop_reason = f"exceeded runtime limit ({child.limit_s} s)"
                logger.warning("%s %s: killing it", child.job, child.stop_reason)
                self._signal(child, signal.SIGKILL)

    def _beat(self) -> None:
        self.last_beat = time.monotonic()
        for child in self.children.values():
            if not child.job.beat() and not child.stop_reason:
                # Someone else finished the job (the Foreman, or `jobs cancel`).
                child.stop_reason = "stopped: the job was finished from outside its worker"
                logger.warning("%s is %s: stopping its process", child.job, child.job.state)
                self._signal(child, signal.SIGKILL)

    def _signal(self, child: Child, sig: int) -> None:
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:  # the child has not called setpgid yet
            os.kill(child.pid, sig)

    def _record_finished(self) -> None:
        while self.finished:
            child = self.finished[0]
            self._record_outcome(child)
            self.finished.pop(0)

    def _record_outcome(self, child: Child) -> None:
        job = child.job
        try:
            self._store_log(child)
        except StorageError as error:  # the log stays in the spool; the outcome matters more
            logger.warning("%s: could not store its log (%s)", job, error)
        if child.recorded_outcome:
            return
        # Each transition applies only to a job still running: one that someone
        # else finished meanwhile keeps its outcome.
        if child.interrupted:
            job.mark_interrupted(child.stop_reason)
        elif child.stop_reason:
            job.mark_failed(child.stop_reason)
        elif job.state == JobState.RUNNING and _still_running(job):
            job.set_exit_code(exit_code(child.status or 0))
            job.mark_failed(exit_reason(child.status or 0))

    def _store_log(self, child: Child) -> None:
        if not child.log_path.exists():
            return
        storage = permanent_storage()
        key = log_key(child.job)
        storage.put_file(child.log_path, key)
        child.job.set_log_location(storage.location(key))
        if not self.keep_spool:
            child.log_path.unlink(missing_ok=True)

    # --- stopping -------------------------------------------------------------------------------

    def stop_all(self, reason: str) -> None:
        """Stop every child (SIGTERM, then SIGKILL after the grace period) and mark
        their jobs interrupted: their retries do not count."""
        for child in self.children.values():
            child.stop_reason, child.interrupted = reason, True
            child.term_sent_at = time.monotonic()
            self._signal(child, signal.SIGTERM)
        deadline = time.monotonic() + settings.REFINERY_KILL_GRACE_S
        while self.children and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.1)
        for child in self.children.values():
            self._signal(child, signal.SIGKILL)
        while self.children:
            self._reap()
            time.sleep(0.05)
        self._record_finished()

    @property
    def busy(self) -> int:
        return len(self.children) + len(self.finished)
