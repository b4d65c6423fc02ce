"""`manage.py foreman`: the retry and recovery loop."""

from __future__ import annotations

import logging
import signal
import sys
import time

from django.conf import settings
from django.core.management.base import CommandError
from django.db import DatabaseError, InterfaceError, OperationalError, connections

from common.commands import RefineryCommand
from common.secrets import redact
from foreman.heartbeat import foreman_name, health, record_beat
from foreman.passes import Foreman

logger = logging.getLogger("refinery.foreman")

RECONNECT_MAX_WAIT_S = 30


class Command(RefineryCommand):
    help = (
        "Watch every job: retry failed ones (stepping up RAM for those killed for memory), "
        "fail and retry hung and lost ones ('worker lost'), stop jobs past their runtime limit, "
        "dispatch waiting jobs within the queue caps, and tell operators (REFINERY_ADMINS, "
        "REFINERY_NOTIFY_WEBHOOK) about jobs it gives up on, and send the webhooks owed for "
        "changes of the sequencing runs' states (REFINERY_RUN_WEBHOOKS). Processors first, then "
        "downloaders, then surveys. Stop with SIGTERM or Ctrl-C."
    )
    examples = """
manage.py foreman                        (a pass every REFINERY_FOREMAN_INTERVAL_S)
manage.py foreman --once                 (one pass, e.g. from cron)
manage.py foreman --check --max-age 300  (a health check: exit 1 if none is alive)
"""

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="run one pass and exit")
        parser.add_argument(
            "--interval",
            type=float,
            default=None,
            help="seconds between passes (default REFINERY_FOREMAN_INTERVAL_S, "
            f"now {settings.REFINERY_FOREMAN_INTERVAL_S:g})",
        )
        parser.add_argument(
            "--check",
            action="store_true",
            help="health check: exit 0 if a Foreman finished a pass within --max-age "
            "seconds, else 1; runs no pass",
        )
        parser.add_argument(
            "--max-age",
            type=float,
            default=None,
            help="for --check: the oldest acceptable last pass, in seconds "
            "(default three intervals, at least 60)",
        )

    def handle(self, *args, once: bool, interval: float | None, check: bool, max_age, **opts):
        interval = settings.REFINERY_FOREMAN_INTERVAL_S if interval is None else interval
        if interval < 0:
            raise CommandError("--interval must not be negative")
        if check:
            alive, line = health(max_age if max_age is not None else max(3 * interval, 60))
            (self.stdout if alive else self.stderr).write(line)
            sys.exit(0 if alive else 1)
        self.stopping = ""
        signal.signal(signal.SIGTERM, self._request_stop)
        signal.signal(signal.SIGINT, self._request_stop)
        name = foreman_name()
        foreman = Foreman()
        if once:
            self._pass(foreman, name, judge_heartbeats=True)
            return
        self.stdout.write(
            f"foreman {name}: a pass every {interval:g} s with {foreman.dispatcher.name} "
            f"dispatch; heartbeat lease {settings.REFINERY_HEARTBEAT_LEASE_S} s"
        )
        self.stdout.flush()
        self._loop(foreman, name, interval)
        self.stdout.write(f"foreman {name}: {self.stopping}; stopped")

    def _loop(self, foreman: Foreman, name: str, interval: float) -> None:
        lease = settings.REFINERY_HEARTBEAT_LEASE_S
        connected_since: float | None = None
        failures = 0
        while not self.stopping:
            try:
                if connected_since is None:
                    connected_since = time.monotonic()
                # A database outage stops every heartbeat: judge them only once the
                # workers, like this loop, had a whole lease to write one again.
                judge = time.monotonic() - connected_since >= lease
                self._pass(foreman, name, judge_heartbeats=judge)
                failures = 0
            except (OperationalError, InterfaceError, DatabaseError) as error:
                failures += 1
                connected_since = None
                wait = min(RECONNECT_MAX_WAIT_S, 2**failures / 2)
                logger.warning("database unavailable (%s); reconnecting in %.1f s",
                               redact(str(error)).strip(), wait)  # fmt: skip
                connections.close_all()
                self._sleep(wait)
                continue
            except Exception:
                # A bug or a surprise in one job must not stop the loop that watches
                # all the others: say so loudly and try again next pass.
                logger.exception("the pass failed; trying again in %g s", interval)
            self._sleep(interval)

    def _pass(self, foreman: Foreman, name: str, judge_heartbeats: bool) -> None:
        started = time.monotonic()
        report = foreman.run_pass(judge_heartbeats=judge_heartbeats)
        took = time.monotonic() - started
        record_beat(name, took, report)
        if report:
            done = ", ".join(f"{n} {what}" for what, n in sorted(report.items()))
            logger.info("pass in %.2f s: %s", took, done)

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    def _request_stop(self, signum, frame) -> None:
        self.stopping = signal.Signals(signum).name
