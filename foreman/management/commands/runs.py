"""`manage.py runs`: the operator's view of sequencing runs, and restoring one."""

from __future__ import annotations

from django.core.management.base import CommandError

from common.commands import RefineryCommand
from common.models import RunState
from foreman import runs
from foreman.job_summaries import to_json
from foreman.jobrefs import RefError, parse_when


class Command(RefineryCommand):
    help = (
        "See the lab's sequencing runs (list, show: state history, batches, jobs, results) and "
        "restore a run's verified archive into a folder. Tables on a terminal, JSON with --json."
    )
    examples = """
manage.py runs list --state archiving --state failed
manage.py runs list --instrument M01234 --since 7d --json
manage.py runs show 230101_A01234_0042_AHXXXXXXX
manage.py runs restore 230101_A01234_0042_AHXXXXXXX /scratch/restored-run
"""

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

        p = sub.add_parser("list", help="runs, newest first")
        p.add_argument(
            "--state", action="append", choices=RunState.values, help="only this state (repeatable)"
        )
        p.add_argument("--instrument", default="", help="only this instrument (its id or type)")
        p.add_argument(
            "--since", metavar="DATE", help="run on or after: a date (2026-05-01) or an age (2d)"
        )
        p.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
        p.add_argument("--json", action="store_true", help="JSON instead of a table")

        p = sub.add_parser("show", help="one run: its fields, history, batches, jobs, results")
        p.add_argument("run_id", metavar="RUN_ID", help="the run id (RunInfo.xml Run@Id)")
        p.add_argument("--json", action="store_true", help="JSON instead of text")

        p = sub.add_parser(
            "restore",
            help="unpack a run's archive into DEST and check it against its manifest",
            description="Unpack the run's verified archive from permanent storage into DEST "
            "(which must not exist, or be empty): DEST becomes the run folder. Every file's size "
            "and SHA-256 is checked against the manifest; nothing appears in DEST unless all of "
            "it checked out.",
        )
        p.add_argument("run_id", metavar="RUN_ID", help="the run id")
        p.add_argument("dest", metavar="DEST", help="the folder to restore into (new or empty)")

    def handle(self, *args, action: str, **options):
        try:
            getattr(self, f"do_{action}")(**options)
        except (RefError, runs.RunError) as error:
            raise CommandError(str(error)) from None

    def do_list(self, state, instrument, since, limit, json, **_):
        if limit < 1:
            raise CommandError("--limit must be at least 1")
        found = list(
            runs.select_runs(state, instrument, parse_when(since) if since else None)[:limit]
        )
        if json:
            self.stdout.write(to_json([runs.run_summary(r) for r in found]))
        elif not found:
            self.stdout.write("no runs match")
        else:
            self.stdout.write(runs.table(runs.LIST_HEADERS, [runs.list_row(r) for r in found]))
            if len(found) == limit:
                self.stdout.write(f"(the newest {limit}; --limit shows more)")

    def do_show(self, run_id, json, **_):
        detail = runs.run_detail(runs.find_run(run_id))
        self.stdout.write(to_json(detail) if json else runs.render_detail(detail))

    def do_restore(self, run_id, dest, **_):
        run = runs.find_run(run_id)
        result = runs.restore_run(run, dest)
        self.stdout.write(
            f"{run.run_id}: {result.files} files, {result.bytes} bytes restored into {dest}; "
            "every file matches the manifest"
        )
