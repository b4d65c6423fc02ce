"""One pass of the Foreman.

Each pass handles processor jobs first (their data is already downloaded), then
downloaders, then surveys. For each kind it:

1. fails running jobs that passed their runtime limit, and running jobs whose
   work the dispatcher says is gone ("worker lost", with how it ended when the
   dispatcher can tell: an out-of-memory death then gets more memory), or, run
   by a remote engine (runner/engines.py), whose keepalives stopped ("engine
   lost": its ASSIGNED folder goes too);
2. fails queued jobs the dispatcher no longer has (lost before they started),
   saying how their work ended when the dispatcher can tell (the exit code and
   stderr of a Nomad task that died before `run_job` started the job);
3. retries failed attempts that have retries left (dispatching the retry at
   once when there is room) and gives up on the others, telling operators;
4. dispatches `created` jobs (left by the outbox, or held back for capacity or
   a pause) within the caps.

Then it removes engines' ASSIGNED folders that no longer match a running job,
delivers pending notifications, and the webhooks owed for changes of the
sequencing runs' states (foreman/webhooks.py), and, when the dispatcher is
local, starts the scheduled surveys that are due (foreman/schedules.py; on
Nomad they are periodic jobs of their own). Every query reads a partial index of
unfinished jobs or of failed jobs nobody settled yet, a page at a time, so a
database of millions of finished jobs costs a pass nothing.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Q, QuerySet
from django.utils import timezone

from common.models import Job, JobState, job_model
from common.models.choices import JobKind
from foreman import notify, webhooks
from foreman.attempts import settle_failed
from foreman.capacity import Budget
from foreman.schedules import start_due_surveys
from runner.dispatch import Dispatcher, DispatchStatus, WorkEnd, get_dispatcher
from runner.dispatch.outbox import dispatch_now
from runner.engines import (
    ENGINE_LOST,
    ENGINE_QUEUE,
    clean_assigned_folders,
    engine_of,
    remove_assigned_folder,
)
from runner.registry import wait_reason

logger = logging.getLogger("refinery.foreman")

KIND_ORDER = (JobKind.PROCESSOR, JobKind.DOWNLOADER, JobKind.SURVEY)
WORKER_LOST = "worker lost"
LOST_REASON = "lost: dispatched but never started, and the dispatcher no longer has it"
NEVER_STARTED = "the Nomad task ended before the job started"
GONE = (DispatchStatus.COMPLETE, DispatchStatus.FAILED, DispatchStatus.LOST, DispatchStatus.GONE)
# The outbox sends a new job right after its transaction commits: leave young
# `created` jobs to it rather than sending them twice.
OUTBOX_GRACE_S = 5.0


def runtime_limit_reason(limit_s: int) -> str:
    """The failure reason of a job stopped at its limit (the worker says the same)."""
    return f"exceeded runtime limit ({limit_s} s)"


def paged(queryset: QuerySet, order: str, page_size: int) -> Iterator[Job]:
    """Every row of `queryset`, ordered by (`order`, id), read a page at a time
    with keyset pagination, so no query reads more than `page_size` rows and rows
    the caller changes meanwhile are neither skipped nor read twice."""
    last = None
    while True:
        page = queryset
        if last is not None:
            page = page.filter(
                Q(**{f"{order}__gt": last[0]}) | Q(**{order: last[0], "pk__gt": last[1]})
            )
        rows = list(page.order_by(order, "pk")[:page_size])
        yield from rows
        if len(rows) < page_size:
            return
        last = (getattr(rows[-1], order), rows[-1].pk)


class Foreman:
    """Runs passes. `judge_heartbeats=False` skips hung-job detection: the loop
    does that until it has been connected to the database for a whole lease, so
    that a database outage, which stops every worker's heartbeat, is not taken
    for lost workers."""

    def __init__(
        self,
        dispatcher: Dispatcher | None = None,
        page_size: int | None = None,
        outbox_grace_s: float = OUTBOX_GRACE_S,
    ) -> None:
        self.dispatcher = dispatcher or get_dispatcher()
        self.page_size = page_size or settings.REFINERY_FOREMAN_PAGE_SIZE
        self.outbox_grace = timedelta(seconds=outbox_grace_s)

    def run_pass(self, judge_heartbeats: bool = True) -> Counter:
        """One pass; returns what it did, counted by "kind action"."""
        report: Counter = Counter()
        budget = Budget.measure(self.dispatcher)
        for kind in KIND_ORDER:
            model = job_model(kind)
            self.check_running(model, budget, report, judge_heartbeats)
            self.check_queued(model, budget, report)
            self.settle_failed(model, budget, report)
            self.dispatch_created(model, budget, report)
        removed = clean_assigned_folders()
        if removed:
            report["engine folders removed"] += removed
        delivered = notify.deliver_pending()
        if delivered:
            report["notifications delivered"] += delivered
        report.update(webhooks.deliver_due())
        if settings.REFINERY_DISPATCHER == "local":
            try:
                started = start_due_surveys()
            except ImproperlyConfigured as error:  # the rest of the pass goes on regardless
                logger.error("scheduled surveys: %s", error)
                started = 0
            if started:
                report["scheduled surveys started"] += started
        return report

    # --- running and queued jobs ------------------------------------------------------------

    def check_running(
        self, model: type[Job], budget: Budget, report: Counter, judge_heartbeats: bool
    ) -> None:
        """Fail running jobs past their limit, and hung ones. Only jobs whose
        heartbeat is older than the lease (a live worker beats several times per
        lease, wherever it runs) or that passed their limit are asked about."""
        now = timezone.now()
        lease = timedelta(seconds=settings.REFINERY_HEARTBEAT_LEASE_S)
        limit_s = settings.REFINERY_RUNTIME_LIMITS_S[model.kind]
        # The worker enforces the limit itself; the Foreman is the backstop, a lease later.
        started_before = now - timedelta(seconds=limit_s) - lease
        suspicious = Q(start_time__lt=started_before)
        if judge_heartbeats:
            suspicious |= Q(heartbeat_at__lt=now - lease) | Q(heartbeat_at__isnull=True)
        running = model.objects.filter(suspicious, state=JobState.RUNNING)
        for job in paged(running, "created_at", self.page_size):
            if job.start_time and job.start_time < started_before:
                if job.mark_failed(runtime_limit_reason(limit_s)):
                    self._stop(job)
                    budget.release(model.kind)
                    report[f"{model.kind} over runtime limit"] += 1
                continue
            if judge_heartbeats and engine_of(job):
                # A remote engine's job: its keepalives are all there is to judge by.
                if self._engine_lost(job, now - lease):
                    remove_assigned_folder(job)
                    budget.release(model.kind)
                    logger.warning("%s: %s (last keepalive %s)", job, job.failure_reason,
                                   job.heartbeat_at)  # fmt: skip
                    report[f"{model.kind} engine lost"] += 1
                continue
            if judge_heartbeats and self._work_gone(job) and self._fail_ended(job, WORKER_LOST):
                self._stop(job)
                budget.release(model.kind)
                logger.warning("%s: %s (last heartbeat %s)", job, job.failure_reason,
                               job.heartbeat_at)  # fmt: skip
                report[f"{model.kind} worker lost"] += 1

    def check_queued(self, model: type[Job], budget: Budget, report: Counter) -> None:
        """Fail queued jobs whose dispatched work the dispatcher no longer has; the
        failed-job step retries them. Jobs dispatched within the last lease are
        left alone: the dispatcher may not know them yet."""
        lease = timedelta(seconds=settings.REFINERY_HEARTBEAT_LEASE_S)
        # Jobs queued for engines wait in the database: there is no dispatched work to lose.
        queued = model.objects.filter(
            state=JobState.QUEUED, dispatched_at__lt=timezone.now() - lease
        ).exclude(dispatch_id=ENGINE_QUEUE)
        for job in paged(queued, "created_at", self.page_size):
            status = self._status(job)
            if status in GONE:
                if self._fail_ended(job, NEVER_STARTED, otherwise=LOST_REASON):
                    self._stop(job)
                    budget.release(model.kind)
                    logger.warning("%s: %s", job, job.failure_reason)
                    report[f"{model.kind} lost"] += 1
            elif status == DispatchStatus.PENDING:
                self._fail_if_unplaceable(job, budget, report)

    def _fail_if_unplaceable(self, job: Job, budget: Budget, report: Counter) -> None:
        """A job the cluster can never place fails without retry (a retry would ask
        for more RAM, which places even less), and operators are told."""
        try:
            reason = self.dispatcher.unplaceable(job)
        except Exception as error:
            logger.warning("%s cannot say whether %s can be placed (%s)", self.dispatcher.name,
                           job, error)  # fmt: skip
            return
        if reason and job.mark_failed(reason, no_retry=True):
            self._stop(job)
            budget.release(job.kind)
            logger.warning("%s: %s", job, reason)
            report[f"{job.kind} unplaceable"] += 1

    def _engine_lost(self, job: Job, stale_before) -> bool:
        """Fail an engine's job whose keepalives stopped (read again, so that a
        keepalive that arrived meanwhile counts); the failed-job step retries it
        and an engine asks for it anew."""
        job.refresh_from_db()
        if job.state != JobState.RUNNING:
            return False
        if job.heartbeat_at and job.heartbeat_at >= stale_before:
            return False
        return job.mark_failed(f"{ENGINE_LOST} (engine {engine_of(job)})")

    def _work_gone(self, job: Job) -> bool:
        """Whether the dispatcher says this running job's work is gone, asked twice
        (with the row read again) so that a heartbeat written meanwhile counts."""
        if self._status(job) not in GONE:
            return False
        job.refresh_from_db()
        return job.state == JobState.RUNNING and self._status(job) in GONE

    def _fail_ended(self, job: Job, what: str, otherwise: str | None = None) -> bool:
        """Fail a job whose dispatched work ended: `what` happened, and how the work
        ended when the dispatcher can tell (with its exit code, which says whether it
        ran out of memory); else `otherwise` (default `what`)."""
        end = self._work_end(job)
        if end is None:
            return job.mark_failed(otherwise or what)
        if end.exit_code is not None:
            job.set_exit_code(end.exit_code)
        return job.mark_failed(end.reason(what))

    def _work_end(self, job: Job) -> WorkEnd | None:
        """How the job's dispatched work ended, if the dispatcher can tell."""
        try:
            return self.dispatcher.work_end(job)
        except Exception as error:  # the reason is then less precise, nothing worse
            logger.warning("%s cannot say how %s ended (%s)", self.dispatcher.name, job, error)
            return None

    def _status(self, job: Job) -> DispatchStatus | None:
        try:
            return self.dispatcher.status(job)
        except Exception as error:  # unknown is not gone
            logger.warning("%s cannot say how %s is (%s)", self.dispatcher.name, job, error)
            return None

    def _stop(self, job: Job) -> None:
        try:
            self.dispatcher.stop(job)
        except Exception as error:
            logger.warning("%s could not stop %s (%s)", self.dispatcher.name, job, error)

    # --- failed jobs ------------------------------------------------------------------------

    def settle_failed(self, model: type[Job], budget: Budget, report: Counter) -> None:
        """Retry or give up on each failed attempt nobody settled yet."""
        unsettled = model.objects.filter(
            state=JobState.FAILED, retried=False, given_up_at__isnull=True
        )
        for job in paged(unsettled, "end_time", self.page_size):
            retry = settle_failed(job)
            if retry is None:
                if job.given_up_at:
                    report[f"{model.kind} given up"] += 1
                continue
            report[f"{model.kind} retried"] += 1
            if budget.room(model.kind) > 0 and dispatch_now(retry, self.dispatcher):
                budget.spend(model.kind)
                report[f"{model.kind} dispatched"] += 1

    # --- created jobs -----------------------------------------------------------------------

    def dispatch_created(self, model: type[Job], budget: Budget, report: Counter) -> None:
        """Send the oldest `created` jobs while the caps leave room."""
        room = budget.room(model.kind)
        if room <= 0:
            return
        waiting = model.objects.filter(
            state=JobState.CREATED, created_at__lt=timezone.now() - self.outbox_grace
        )
        for job in paged(waiting, "created_at", min(self.page_size, room)):
            if wait_reason(job):  # what it needs does not exist yet (an index, say)
                report[f"{model.kind} waiting"] += 1
                continue
            if not dispatch_now(job, self.dispatcher):
                return  # the dispatcher refuses: try again next pass
            budget.spend(model.kind)
            report[f"{model.kind} dispatched"] += 1
            room -= 1
            if room <= 0:
                return
