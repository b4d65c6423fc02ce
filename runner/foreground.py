"""Running one job in the foreground under a worker's supervision: `manage.py
run_job` and a foreground `manage.py survey` both do it.

The job runs in a supervised child process (heartbeat, runtime limit, its log
kept in storage, an outcome recorded whatever happens: see `supervisor`), and
its output is echoed here as it is written. SIGTERM or SIGINT (Ctrl-C) stops
the child and marks the job interrupted, so its retry does not count.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import TextIO

from django.core.management.base import OutputWrapper

from common.models import Job
from runner.supervisor import Supervisor

ECHO_EVERY_S = 0.05
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def run_in_foreground(job: Job, command: str, out: TextIO | OutputWrapper | None = None) -> bool:
    """Run `job` (already marked started by this process) to its end, echoing its
    output to `out` (stdout). `command` names who runs it, for the reason of an
    interruption. Returns whether the job succeeded."""
    out = out or sys.stdout
    if out.isatty():
        os.environ["REFINERY_PROGRESS"] = "1"  # the child's progress bars reach this terminal
    stopping: list[str] = []

    def stop(signum: int, frame: object) -> None:
        stopping.append(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS}
    try:
        return supervise_echoing(job, command, out, stopping)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def supervise_echoing(
    job: Job, command: str, out: TextIO | OutputWrapper, stopping: list[str]
) -> bool:
    """Run `job` in a supervised child, echoing its log to `out`, until it ends or
    `stopping` (filled by the caller's signal handlers) names a signal: then the
    job is stopped and marked interrupted by `command`. Returns whether it
    succeeded."""
    supervisor = Supervisor(keep_spool=True)
    child = supervisor.launch(job)
    offset = 0
    while supervisor.busy and not stopping:
        supervisor.poll()
        offset = echo_log(child.log_path, offset, out)
        time.sleep(ECHO_EVERY_S)
    if stopping:
        supervisor.stop_all(f"interrupted: {command} received {stopping[0]}")
    echo_log(child.log_path, offset, out)
    child.log_path.unlink(missing_ok=True)
    return child.succeeded


def echo_log(path: Path, offset: int, out: TextIO | OutputWrapper) -> int:
    """Write what the log holds past `offset` to `out`; returns the new offset."""
    try:
        with open(path, "rb") as log:
            log.seek(offset)
            data = log.read()
    except FileNotFoundError:
        return offset
    if data:
        text = data.decode("utf-8", "replace")
        if isinstance(out, OutputWrapper):  # a command's stdout: no line ending added
            out.write(text, ending="")
        else:
            out.write(text)
        out.flush()
    return offset + len(data)
