"""`manage.py survey <source> …`: discover new batches in a source."""

from __future__ import annotations

from django.core.management.base import CommandError, CommandParser

from common.commands import RefineryCommand
from common.models import SurveyJob
from common.models.choices import SurveySource
from runner.dispatch import send_job
from runner.foreground import run_in_foreground
from runner.lifecycle import start_here
from runner.pipeline import JobError
from runner.registry import survey_sources, surveyor_class


class Command(RefineryCommand):
    help = (
        "Survey a source for new batches: record each batch once and queue one downloader "
        "job per group of new batches. Runs in the foreground unless --queue is given."
    )
    examples = """
manage.py survey ensembl --division EnsemblFungi --species saccharomyces_cerevisiae
manage.py survey ena --study PRJNA123456
manage.py survey ena --run SRR1234567 --ensembl-division EnsemblVertebrates
manage.py survey local_files /data/incoming --pattern '*.fastq.gz'
manage.py survey illumina_runs /mnt/sequencers [--archive-failed]
manage.py survey ensembl --help        (a source's own options)
manage.py survey --queue ena --study PRJNA123456   (as a job, for a worker)
"""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--queue",
            action="store_true",
            help="queue the survey as a job for a worker instead of running it here",
        )
        sources = parser.add_subparsers(
            dest="source", required=True, metavar="source", parser_class=type(parser)
        )
        for source, surveyor in survey_sources().items():
            sub = sources.add_parser(
                source,
                help=surveyor.help or SurveySource(source).label,
                called_from_command_line=True,
            )
            surveyor.add_arguments(sub)

    def handle(self, *args, source: str, queue: bool, **options):
        surveyor = surveyor_class(source)
        try:
            parameters = surveyor.parameters_from_options(options)
        except JobError as error:
            raise CommandError(error.reason) from None
        job = SurveyJob.objects.create(source=source, parameters=parameters)
        if queue:
            send_job(job)
            self.stdout.write(f"queued survey job {job.pk}")
            return
        # Under a worker's supervision (heartbeat, runtime limit, log), like any job;
        # the survey's own last step prints what it found.
        start_here(job)
        if not run_in_foreground(job, "survey", self.stdout):
            job.refresh_from_db()  # the reason was recorded by the child
            raise CommandError(f"survey job {job.pk} failed: {job.failure_reason}")
