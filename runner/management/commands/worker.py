"""`manage.py worker`: run queued jobs on this machine."""

from __future__ import annotations

import logging
import signal
import time

from django.conf import settings
from django.core.management.base import CommandError
from django.db import DatabaseError, InterfaceError, OperationalError, connections

from common.commands import RefineryCommand
from common.models.choices import JobKind
from common.secrets import redact
from common.version import refinery_version, worker_identity
from runner.dispatch.local import CLAIM_ORDER, claim_next_job
from runner.supervisor import Supervisor

logger = logging.getLogger("refinery.worker")

RECONNECT_MAX_WAIT_S = 30


class Command(RefineryCommand):
    help = (
        "Run queued jobs on this machine, each in a child process with a heartbeat and a "
        "runtime limit. Processor jobs go first, then downloaders, then surveys. "
        "Stop with SIGTERM or Ctrl-C: running jobs are marked failed without spending a retry."
    )
    examples = """
manage.py worker                         (one job at a time, until stopped)
manage.py worker --concurrency 4 --kind processor
manage.py worker --until-idle            (stop once nothing is left to run)
"""

    def add_arguments(self, parser):
        parser.add_argument(
            "--concurrency", type=int, default=1, help="jobs to run at once (default 1)"
        )
        parser.add_argument(
            "--until-idle",
            action="store_true",
            help="exit once no job is queued or running here (default: run until stopped)",
        )
        parser.add_argument(
            "--kind",
            action="append",
            choices=[k.value for k in JobKind],
            help="only take jobs of this kind (repeatable; default: every kind)",
        )

    def handle(self, *args, concurrency: int, until_idle: bool, kind: list[str] | None, **opts):
        if concurrency < 1:
            raise CommandError("--concurrency must be at least 1")
        kinds = tuple(k for k in CLAIM_ORDER if not kind or k in kind)
        self.stopping = ""
        signal.signal(signal.SIGTERM, self._request_stop)
        signal.signal(signal.SIGINT, self._request_stop)
        worker_id, version = worker_identity(), refinery_version()
        supervisor = Supervisor()
        database = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
        self.stdout.write(
            f"worker {worker_id} (refinery {version}): up to {concurrency} job(s) of "
            f"{', '.join(kinds)}; database {database}"
        )
        ran, failures = 0, 0
        while not self.stopping:
            try:
                supervisor.poll()
                claimed = 0
                while supervisor.busy < concurrency and not self.stopping:
                    job = claim_next_job(worker_id, version, kinds)
                    if job is None:
                        break
                    supervisor.launch(job)
                    claimed += 1
                    ran += 1
                failures = 0
                if until_idle and not claimed and not supervisor.busy:
                    break
            except (OperationalError, InterfaceError, DatabaseError) as error:
                failures += 1
                wait = min(RECONNECT_MAX_WAIT_S, 2**failures / 2)
                logger.warning(
                    "database unavailable (%s); reconnecting in %.1f s",
                    redact(str(error)).strip(),
                    wait,
                )
                connections.close_all()
                time.sleep(wait)
                continue
            time.sleep(settings.REFINERY_WORKER_POLL_S)
        if self.stopping:
            self.stdout.write(f"worker {worker_id}: {self.stopping}; stopping running jobs")
            self._stop_children(supervisor)
        self.stdout.write(f"worker {worker_id}: ran {ran} job(s); stopped")

    def _stop_children(self, supervisor: Supervisor) -> None:
        for attempt in range(5):
            try:
                supervisor.stop_all(f"interrupted: worker received {self.stopping}")
                return
            except (OperationalError, InterfaceError, DatabaseError):
                connections.close_all()
                time.sleep(1 + attempt)

    def _request_stop(self, signum, frame) -> None:
        self.stopping = signal.Signals(signum).name
