"""`manage.py survey <source> …`: discover new batches in a source."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from common.job_lookup import SURVEYORS, surveyor_class
from common.message_queue import send_job
from common.models import SurveyJob
from surveyor.external_source import SurveyError


class Command(BaseCommand):
    help = (
        "Survey a source for new batches: record each batch once and queue one downloader "
        "job per group of new batches. Runs in the foreground unless --queue is given."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--queue",
            action="store_true",
            help="queue the survey as a job for a worker instead of running it here",
        )
        sources = parser.add_subparsers(
            dest="source", required=True, metavar="source", parser_class=type(parser)
        )
        for source in SURVEYORS:
            surveyor = surveyor_class(source)
            sub = sources.add_parser(
                source.value, help=surveyor.help or source.label, called_from_command_line=True
            )
            surveyor.add_arguments(sub)

    def handle(self, *args, source: str, queue: bool, **options):
        surveyor = surveyor_class(source)
        try:
            parameters = surveyor.parameters_from_options(options)
        except SurveyError as error:
            raise CommandError(error.reason) from None
        job = SurveyJob.objects.create(source=source, parameters=parameters)
        if queue:
            send_job(job)
            self.stdout.write(f"queued survey job {job.pk}")
            return
        instance = surveyor(job, show_progress=True)
        ok = instance.survey()
        job.refresh_from_db()
        result = instance.result
        if not ok:
            raise CommandError(f"survey job {job.pk} failed: {job.failure_reason}")
        self.stdout.write(
            f"survey job {job.pk}: {result.discovered} batch(es) found, "
            f"{len(result.new_batches)} new, {len(result.downloader_jobs)} downloader job(s) queued"
        )
