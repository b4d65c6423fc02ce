"""`manage.py basecall_engine`: this machine as a basecalling engine of a refinery."""

from __future__ import annotations

import signal
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError

from common.commands import RefineryCommand
from common.progress import Progress
from processors.basecalling.remote import Engine, RefineryError
from runner.engines import engine_name_problem
from runner.pipeline import JobError


class Command(RefineryCommand):
    help = (
        "Basecall for a refinery from outside its cluster (a GPU server with Dorado): ask "
        "it for basecalling jobs, run `dorado basecaller` on each batch's pod5 files, send "
        "back one output per pod5 file, with keepalives while it works. SIGTERM or Ctrl-C "
        "stops Dorado and hands the job back without spending a retry. Needs only HTTP "
        "access to the refinery and the token `manage.py engines add NAME` printed there."
    )
    examples = """
manage.py basecall_engine --server https://refinery.example.org --token 9f3c… --name gpu004
manage.py basecall_engine --server http://10.0.0.5:8000 --token-file /etc/refinery/engine.token \\
    --name gpu004 --dorado /opt/dorado/bin/dorado --batch-size 2
manage.py basecall_engine --server http://127.0.0.1:8000 --token T --name gpu004 --until-idle
"""

    def add_arguments(self, parser):
        parser.add_argument("--server", required=True, help="the refinery's URL")
        token = parser.add_mutually_exclusive_group(required=True)
        token.add_argument("--token", help="this engine's API token")
        token.add_argument("--token-file", type=Path, help="a file holding the token")
        parser.add_argument("--name", required=True, help="this engine's name at the refinery")
        parser.add_argument(
            "--dorado",
            default=settings.REFINERY_DORADO,
            help="the Dorado binary (default REFINERY_DORADO: %(default)s)",
        )
        parser.add_argument(
            "--work-dir",
            type=Path,
            default=None,
            help="scratch space for calls and fetched inputs (default $REFINERY_HOME/engine)",
        )
        parser.add_argument(
            "--batch-size", type=int, default=1, help="jobs to take per assign (default 1)"
        )
        parser.add_argument(
            "--poll", type=float, default=5.0, help="seconds between asks when idle (default 5)"
        )
        parser.add_argument(
            "--until-idle", action="store_true", help="exit once the refinery has no work"
        )

    def handle(self, *args, server, token, token_file, name, dorado, work_dir, batch_size,
               poll, until_idle, **options):  # fmt: skip
        if engine_name_problem(name):
            raise CommandError(engine_name_problem(name))
        if token_file is not None:
            try:
                token = token_file.read_text().strip()
            except OSError as error:
                raise CommandError(f"cannot read --token-file {token_file}: {error}") from None
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        work_dir = work_dir or Path(settings.REFINERY_HOME) / "engine"
        engine = Engine(
            server, token, name, work_dir, dorado, batch_size=batch_size, poll_s=poll,
            say=lambda line: self.stdout.write(line),
        )  # fmt: skip
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
            signal.signal(sig, engine.on_signal)
        with Progress(None, f"engine {name}: batches") as progress:
            try:
                engine.run(until_idle=until_idle, on_job=progress.advance)
            except JobError as error:
                raise CommandError(error.reason) from None
            except RefineryError as error:
                raise CommandError(f"{error}: check --server and --token") from None
