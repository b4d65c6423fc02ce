"""`manage.py watch <source> DIR …`: survey folders continuously as instruments
write to them (see surveyor/watching.py)."""

from __future__ import annotations

from django.core.management.base import CommandError, CommandParser

from common.commands import RefineryCommand
from runner.registry import surveyor_class
from surveyor.watching import Watcher, watch_sources


class Command(RefineryCommand):
    help = (
        "Watch the folders instruments write to and survey them as runs appear and finish: "
        "inotify events within seconds, a full rescan every --interval seconds (NFS sends no "
        "events for files written by another machine), and a look again when a marker has "
        "passed the grace period. Runs until SIGTERM or Ctrl-C."
    )
    examples = """
manage.py watch illumina_runs /mnt/sequencers
manage.py watch illumina_runs /mnt/novaseq /mnt/miseq --interval 120
manage.py watch illumina_runs /mnt/sequencers --queue   (surveys as jobs, for workers)
manage.py watch illumina_runs --help                    (the survey's own options)
"""

    def add_arguments(self, parser: CommandParser) -> None:
        sources = parser.add_subparsers(
            dest="source", required=True, metavar="source", parser_class=type(parser)
        )
        for source in watch_sources():
            surveyor = surveyor_class(source)
            sub = sources.add_parser(source, help=surveyor.help, called_from_command_line=True)
            surveyor.add_arguments(sub)
            sub.add_argument(
                "--interval",
                type=float,
                default=300.0,
                help="seconds between full rescans (default 300)",
            )
            sub.add_argument(
                "--queue",
                action="store_true",
                help="queue each survey as a job for a worker instead of running it here",
            )

    def handle(self, *args, source: str, interval: float, queue: bool, **options):
        if interval <= 0:
            raise CommandError("--interval must be a positive number of seconds")
        registered = watch_sources()[source]
        dirs = options.get(registered.paths_option) or []
        watcher = Watcher(source, dirs, options, interval, queue=queue, out=self.stdout)
        watcher.run()
