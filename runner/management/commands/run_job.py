"""`manage.py run_job <kind> <id>`: run one job in the foreground."""

from __future__ import annotations

import signal
import sys
import time

from django.core.management.base import BaseCommand, CommandError

from common.models import JOB_MODELS, job_model
from runner.lifecycle import start_here
from runner.supervisor import Supervisor


class Command(BaseCommand):
    help = (
        "Run one job in the foreground with a worker's bookkeeping (heartbeat, runtime limit, "
        "log in storage). This is what a Nomad task runs. A job that already started elsewhere "
        "is left alone."
    )

    def add_arguments(self, parser):
        parser.add_argument("kind", choices=list(JOB_MODELS), help="the job's kind")
        parser.add_argument("job_id", type=int, help="the job's id")

    def handle(self, *args, kind: str, job_id: int, **options):
        try:
            job = job_model(kind).objects.get(pk=job_id)
        except job_model(kind).DoesNotExist:
            raise CommandError(
                f"there is no {kind} job {job_id}: see `manage.py jobs list --kind {kind}`"
            ) from None
        if not start_here(job):
            self.stdout.write(f"{kind} job {job_id} is already {job.state}; not running it again")
            return
        supervisor = Supervisor(keep_spool=True)
        stopping: list[str] = []
        signal.signal(signal.SIGTERM, lambda s, f: stopping.append(signal.Signals(s).name))
        signal.signal(signal.SIGINT, lambda s, f: stopping.append(signal.Signals(s).name))
        child = supervisor.launch(job)
        offset = 0
        while supervisor.busy and not stopping:
            supervisor.poll()
            offset = self._echo_log(child.log_path, offset)
            time.sleep(0.2)
        self._echo_log(child.log_path, offset)
        child.log_path.unlink(missing_ok=True)
        if stopping:
            supervisor.stop_all(f"interrupted: run_job received {stopping[0]}")
        if not child.succeeded:
            job.refresh_from_db()  # the outcome and its reason were recorded elsewhere
            self.stderr.write(f"{job}: {job.failure_reason}")
            sys.exit(1)
        self.stdout.write(f"{job.kind} job {job.pk} (succeeded)")

    def _echo_log(self, path, offset: int) -> int:
        """Show the child's output as it is written."""
        try:
            with open(path, "rb") as log:
                log.seek(offset)
                data = log.read()
        except FileNotFoundError:
            return offset
        if data:
            sys.stdout.write(data.decode("utf-8", "replace"))
            sys.stdout.flush()
        return offset + len(data)
