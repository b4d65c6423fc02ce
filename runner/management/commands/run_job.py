"""`manage.py run_job <kind> <id>`: run one job in the foreground."""

from __future__ import annotations

import sys

from django.core.management.base import CommandError

from common.commands import RefineryCommand
from common.models import JOB_MODELS, job_model
from runner.foreground import run_in_foreground
from runner.lifecycle import start_here


class Command(RefineryCommand):
    help = (
        "Run one job in the foreground with a worker's bookkeeping (heartbeat, runtime limit, "
        "log in storage). This is what a Nomad task runs. A job that already started elsewhere "
        "is left alone."
    )
    examples = """
manage.py run_job processor 12
manage.py run_job downloader 7
"""

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
        if not run_in_foreground(job, "run_job", self.stdout):
            job.refresh_from_db()  # the outcome and its reason were recorded by the child
            self.stderr.write(f"{job}: {job.failure_reason}")
            sys.exit(1)
        self.stdout.write(f"{job.kind} job {job.pk} (succeeded)")
