"""`manage.py jobs`: the operator's view of jobs, and what an operator may do."""

from __future__ import annotations

import codecs
import time

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError
from django.utils import timezone

from common.commands import RefineryCommand
from common.models import JOB_MODELS, JobState, PausedKind, job_model
from common.models.jobs import FINISHED, UNFINISHED
from foreman import actions, cli_tables, job_summaries, log_text
from foreman.heartbeat import health
from foreman.jobrefs import RefError, find_job, job_ref, parse_kind, parse_when
from foreman.models import Notification
from foreman.schedules import schedule_statuses
from runner.job_logs import local_log_file, read_log
from runner.registry import queued_waits

STATES = [state.value for state in JobState]
KIND_HELP = f"one of {', '.join(JOB_MODELS)}"
JOB_HELP = "the job: KIND:ID (e.g. processor:12), or an ID that only one kind has"


class Command(RefineryCommand):
    help = (
        "See and steer jobs: list, show (the whole attempt chain), log [--follow], retry "
        "(one job, or every failure since a time), cancel, pause and resume a kind, status. "
        "Tables on a terminal, JSON with --json."
    )
    examples = """
manage.py jobs list --state failed --since 1d
manage.py jobs show processor:12
manage.py jobs log processor:12 --follow
manage.py jobs log processor:12 --tail 50
manage.py jobs retry processor:12
manage.py jobs retry --failed-since 2026-05-01 --reason 'timed out|503'
manage.py jobs cancel downloader:7
manage.py jobs pause downloader      (and later: jobs resume downloader)
manage.py jobs status || alert       (exits 1 when the Foreman is not alive)
manage.py jobs schedules             (scheduled surveys: last and next run)
"""

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

        p = sub.add_parser("list", help="jobs, newest first")
        p.add_argument("--kind", action="append", help=f"only this kind ({KIND_HELP}; repeatable)")
        p.add_argument(
            "--state", action="append", choices=STATES, help="only this state (repeatable)"
        )
        p.add_argument(
            "--since",
            metavar="DATE",
            help="created at or after: a date (2026-05-01) or an age (6h, 2d)",
        )
        p.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
        p.add_argument("--json", action="store_true", help="JSON instead of a table")

        p = sub.add_parser("show", help="one job: its attempt chain, batches, files, results")
        p.add_argument("job", help=JOB_HELP)
        p.add_argument("--kind", help=f"the kind, when JOB is a bare id ({KIND_HELP})")
        p.add_argument("--json", action="store_true", help="JSON instead of text")

        p = sub.add_parser("log", help="a job's output; --follow shows it live while it runs")
        p.add_argument("job", help=JOB_HELP)
        p.add_argument("--kind", help=f"the kind, when JOB is a bare id ({KIND_HELP})")
        p.add_argument("--follow", "-f", action="store_true", help="keep printing until it ends")
        p.add_argument(
            "--tail",
            type=int,
            metavar="N",
            help="only the last N lines, progress bars collapsed to their last state",
        )
        p.add_argument(
            "--poll", type=float, default=0.5, help="seconds between reads (default 0.5)"
        )

        p = sub.add_parser(
            "retry",
            help="a new attempt of a failed job, or of every failure since a time",
            description="A new attempt of a failed job (even one the Foreman gave up on), or "
            "with --failed-since of every failed job without a later attempt that ended since "
            "then. New attempts are sent at once unless their kind is paused or capped.",
        )
        p.add_argument("job", nargs="?", help=JOB_HELP)
        p.add_argument("--kind", action="append", help=f"the kind(s) ({KIND_HELP})")
        p.add_argument(
            "--failed-since",
            metavar="DATE",
            help="every failure that ended since: a date or an age",
        )
        p.add_argument(
            "--reason",
            metavar="REGEX",
            help="with --failed-since: only failures whose reason matches this regular expression",
        )
        p.add_argument("--ram", type=int, metavar="MB", help="RAM (MB) for the new attempt(s)")
        p.add_argument(
            "--dry-run", action="store_true", help="say what would be retried, do nothing"
        )
        p.add_argument("--json", action="store_true", help="JSON instead of a table")

        p = sub.add_parser("cancel", help="stop a job for good (no retry, no notification)")
        p.add_argument("job", help=JOB_HELP)
        p.add_argument("--kind", help=f"the kind, when JOB is a bare id ({KIND_HELP})")
        p.add_argument("--reason", default="", help="why, recorded on the job")

        p = sub.add_parser("pause", help="dispatch nothing new of a kind; running jobs finish")
        p.add_argument("kind", help=KIND_HELP)
        p.add_argument("--reason", default="", help="why, shown by `jobs status`")

        p = sub.add_parser("resume", help="dispatch a paused kind again")
        p.add_argument("kind", help=KIND_HELP)

        p = sub.add_parser(
            "status",
            help="unfinished jobs by kind, pauses, the Foreman's health; exits 1 when the "
            "Foreman is not alive (a health check)",
        )
        p.add_argument("--json", action="store_true", help="JSON instead of text")

        p = sub.add_parser(
            "schedules",
            help="the scheduled surveys (REFINERY_SCHEDULED_SURVEYS) with their last and next run",
        )
        p.add_argument("--json", action="store_true", help="JSON instead of a table")

    def handle(self, *args, action: str, **options):
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        try:
            getattr(self, f"do_{action}")(**options)
        except (RefError, actions.OperatorError) as error:
            raise CommandError(str(error)) from None

    def out(self, text: str) -> None:
        self.stdout.write(text)

    # --- looking --------------------------------------------------------------------------------

    def _kinds(self, kinds: list[str] | None) -> list[str]:
        return [parse_kind(k) for k in kinds] if kinds else list(JOB_MODELS)

    def do_list(self, kind, state, since, limit, json, **_):
        if limit < 1:
            raise CommandError("--limit must be at least 1")
        jobs = []
        for k in self._kinds(kind):
            query = job_model(k).objects.all()
            if state:
                query = query.filter(state__in=state)
            if since:
                query = query.filter(created_at__gte=parse_when(since))
            jobs += list(query.order_by("-created_at", "-id")[:limit])
        jobs.sort(key=lambda j: (j.created_at, j.kind, j.pk), reverse=True)
        jobs = jobs[:limit]
        if json:
            self.out(job_summaries.to_json([job_summaries.job_summary(j) for j in jobs]))
        elif not jobs:
            self.out("no jobs match")
        else:
            self.out(
                cli_tables.table(cli_tables.LIST_HEADERS, [cli_tables.list_row(j) for j in jobs])
            )
            if len(jobs) == limit:
                self.out(f"(the newest {limit}; --limit shows more)")

    def do_show(self, job, kind, json, **_):
        found = find_job(job, parse_kind(kind) if kind else None)
        detail = job_summaries.job_detail(found)
        self.out(job_summaries.to_json(detail) if json else cli_tables.render_detail(detail))

    def do_log(self, job, kind, follow, poll, tail, **_):
        if tail is not None and (tail < 1 or follow):
            raise CommandError("--tail takes a number of lines of at least 1, without --follow")
        found = find_job(job, parse_kind(kind) if kind else None)
        if not follow:
            content = read_log(found)
            if content is None:
                raise CommandError(f"{job_ref(found)} has no log yet ({found.state})")
            if tail:
                text = log_text.collapse_progress(content.decode("utf-8", "replace"))
                self.stdout.write(log_text.tail(text, tail)[0], ending="")
                return
            self._write_bytes(content)
            return
        self._follow(found, max(0.05, poll))

    def _follow(self, job, poll: float) -> None:
        """Print the log as it grows, until the job ended and its log was stored
        (or a few seconds after it ended, when the log is not reachable here)."""
        offset, ended_at = 0, None
        while True:
            job.refresh_from_db()
            data = read_log(job, offset) or b""
            if data:
                self._write_bytes(data)
                offset += len(data)
            if job.state in FINISHED:
                stored = local_log_file(job) is None
                ended_at = ended_at or time.monotonic()
                if stored or time.monotonic() - ended_at > 5:
                    break
            time.sleep(poll)
        note = f"== {job_ref(job)} {job.state}"
        if job.failure_reason:
            note += f": {job.failure_reason}"
        if job.retried:
            note += f" (retried as {job_ref(job.attempts[-1])})"
        self.stderr.write(note)

    def _write_bytes(self, data: bytes) -> None:
        # Incremental, so a character split between two reads is printed whole.
        self.stdout.write(self._decoder.decode(data), ending="")
        self.stdout.flush()

    def do_status(self, json, **_):
        counts = {
            kind: {s: model.objects.filter(state=s).count() for s in UNFINISHED}
            for kind, model in JOB_MODELS.items()
        }
        paused = list(PausedKind.objects.all())
        alive, line = health(max_age_s=300)
        undelivered = Notification.objects.filter(delivered_at__isnull=True).count()
        if json:
            self.out(job_summaries.to_json({
                "unfinished": counts,
                "paused": [{"kind": p.kind, "since": p.paused_at, "by": p.paused_by,
                            "reason": p.reason} for p in paused],
                "foreman": {"alive": alive, "said": line},
                "undelivered_notifications": undelivered,
                "waiting": queued_waits(),
            }))  # fmt: skip
            self._fail_unless_alive(alive, line)
            return
        self.out(cli_tables.table(
            ["KIND", *(s.upper() for s in UNFINISHED), "PAUSED"],
            [[k, *c.values(), "yes" if k in {p.kind for p in paused} else "no"]
             for k, c in counts.items()],
        ))  # fmt: skip
        for p in paused:
            self.out(f"{p}, by {p.paused_by or '?'}" + (f": {p.reason}" if p.reason else ""))
        for waiting in queued_waits():
            self.out(waiting)
        self.out(("" if alive else "NOT ALIVE: ") + line)
        if undelivered:
            self.out(f"{undelivered} notification(s) not delivered yet")
        self._fail_unless_alive(alive, line)

    @staticmethod
    def _fail_unless_alive(alive: bool, line: str) -> None:
        """`jobs status` is a health check: it exits 1 when the Foreman is not alive."""
        if not alive:
            raise CommandError(
                f"the Foreman is not alive ({line}): start it with `manage.py foreman`",
                returncode=1,
            )

    def do_schedules(self, json, **_):
        try:
            statuses = schedule_statuses()
        except ImproperlyConfigured as error:
            raise CommandError(str(error)) from None
        runs_here = settings.REFINERY_DISPATCHER == "local"
        if json:
            self.out(job_summaries.to_json([
                {"name": s.name, "cron": s.cron, "args": list(s.args),
                 "last_due_at": s.last_due_at, "last_started_at": s.last_started_at,
                 "last_job": f"survey:{s.last_job_id}" if s.last_job_id else None,
                 "last_error": s.last_error, "next_due_at": s.next_due_at,
                 "started_by": "foreman" if runs_here else "nomad"}
                for s in statuses
            ]))  # fmt: skip
            return
        if not statuses:
            self.out("no scheduled surveys (REFINERY_SCHEDULED_SURVEYS is empty)")
            return
        zone = settings.REFINERY_SCHEDULED_SURVEYS_TIME_ZONE
        self.out(cli_tables.table(
            ["NAME", f"CRON ({zone})", "LAST DUE", "LAST STARTED", "JOB", "NEXT DUE", "ARGS"],
            [[s.name, s.cron, cli_tables.when(s.last_due_at), cli_tables.when(s.last_started_at),
              f"survey:{s.last_job_id}" if s.last_job_id else "",
              cli_tables.when(s.next_due_at), cli_tables.clip(" ".join(s.args), 50)]
             for s in statuses],
        ))  # fmt: skip
        for s in statuses:
            if s.last_error:
                self.out(f"{s.name}: the last due run could not start: {s.last_error}")
        if not runs_here:
            self.out(
                "The dispatcher is nomad: Nomad's periodic jobs start these "
                "(`manage.py nomad register`); the times above are the Foreman's, if it ran them."
            )

    # --- acting ---------------------------------------------------------------------------------

    def do_retry(self, job, kind, failed_since, reason, ram, dry_run, json, **_):
        if ram is not None and ram < 1:
            raise CommandError("--ram must be a positive number of MB")
        if job and failed_since:
            raise CommandError("give a JOB or --failed-since, not both")
        if job:
            if reason:
                raise CommandError("--reason goes with --failed-since")
            if kind and len(kind) > 1:
                raise CommandError("give one --kind with a JOB")
            targets = [find_job(job, parse_kind(kind[0]) if kind else None)]
        elif failed_since:
            targets = list(
                actions.failed_since(self._kinds(kind), parse_when(failed_since), reason)
            )
        else:
            raise CommandError("say what to retry: a JOB, or --failed-since DATE")
        done = []
        for target in targets:
            if dry_run:
                refusal = actions.retry_refusal(target)
                if refusal is None:
                    done.append((target, None))
                elif job:
                    raise actions.OperatorError(refusal)
                else:
                    self.stderr.write(f"skipped {job_ref(target)}: {refusal}")
                continue
            try:
                done.append((target, actions.retry_job(target, ram_mb=ram)))
            except actions.OperatorError as error:
                if job:
                    raise
                self.stderr.write(f"skipped {job_ref(target)}: {error}")
        if json:
            self.out(job_summaries.to_json([
                {"job": job_ref(old), "retry": job_ref(new) if new else None,
                 "state": new.state if new else None, "ram_mb": new.ram_mb if new else None,
                 "failure_reason": old.failure_reason}
                for old, new in done
            ]))  # fmt: skip
            return
        if not done:
            self.out("nothing to retry")
            return
        self.out(cli_tables.table(
            ["FAILED", "NEW ATTEMPT", "STATE", "RAM", "REASON"],
            [[job_ref(old), job_ref(new) if new else "(dry run)", new.state if new else "",
              f"{new.ram_mb} MB" if new else "", cli_tables.clip(old.failure_reason, 60)]
             for old, new in done],
        ))  # fmt: skip
        held = [new for _, new in done if new and new.state == JobState.CREATED]
        if held:
            self.out(f"{len(held)} new attempt(s) wait as created (paused or capped): "
                     "the Foreman sends them")  # fmt: skip

    def do_cancel(self, job, kind, reason, **_):
        self.out(actions.cancel_job(find_job(job, parse_kind(kind) if kind else None), reason))

    def do_pause(self, kind, reason, **_):
        kind = parse_kind(kind)
        if actions.pause(kind, reason):
            self.out(f"paused {kind} jobs: nothing new is dispatched; running jobs finish. "
                     f"`manage.py jobs resume {kind}` undoes it.")  # fmt: skip
        else:
            self.out(f"{kind} jobs were already paused")

    def do_resume(self, kind, **_):
        kind = parse_kind(kind)
        if actions.resume(kind):
            self.out(f"resumed {kind} jobs: the Foreman dispatches what waited at its next pass "
                     f"({timezone.now():%H:%M:%S} UTC now)")  # fmt: skip
        else:
            self.out(f"{kind} jobs were not paused")
