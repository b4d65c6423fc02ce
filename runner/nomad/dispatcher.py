"""The Nomad dispatcher: each job is a dispatch of a parameterized batch job.

Sending a job dispatches `REFINERY_<KIND>_<RAM>` (the smallest RAM tier that
holds the job's `ram_mb`; see runner/nomad/specs.py) with meta `JOB_ID` and
`JOB_KIND`, and returns the dispatched child's ID, which becomes the job's
`dispatch_id`. The dispatch is idempotent per attempt: its idempotency token
(in the query string, where Nomad reads it; python-nomad's own argument puts it
in the body, where Nomad ignores it) names the job row, so a retried send whose
first answer was lost returns the child the first one created.

The Foreman asks what became of a dispatch (`status`) and how its task ended
(`work_end`), stops one (`stop`), measures the queue (`capacity`) and learns why
Nomad cannot place a job
(`placement_failure`, and `unplaceable` once it waited past
REFINERY_NOMAD_PLACEMENT_TIMEOUT_S). Every Nomad failure is a DispatchError with a clear
message that never holds the Nomad token.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.utils import timezone

from common.models import Job, JobState
from runner.dispatch.base import Capacity, Dispatcher, DispatchError, DispatchStatus, WorkEnd
from runner.nomad.client import NomadError, call
from runner.nomad.register import parent_states
from runner.nomad.task_end import is_child_id, own_allocation_id, task_end, template_wait
from runner.nomad.worker_classes import all_parent_ids, parent_for
from runner.registry import engine_runnable

LIVE = ("pending", "running")
CLIENT_STATUS = {
    "complete": DispatchStatus.COMPLETE,
    "failed": DispatchStatus.FAILED,
    "lost": DispatchStatus.LOST,
    # The node stopped reporting; without max_client_disconnect Nomad marks it lost.
    "unknown": DispatchStatus.LOST,
}


def idempotency_token(job: Job) -> str:
    """One token per attempt (row). Its creation time keeps a token from an older
    database with the same row IDs from matching a child that is not this job's."""
    return f"{job.kind}-{job.pk}-{job.created_at.strftime('%Y%m%dT%H%M%S%f')}"


class NomadDispatcher(Dispatcher):
    name = "nomad"

    def __init__(self) -> None:
        # The allocations the latest `status` read, for `unplaceable` to look at.
        self._last_allocations: tuple[str, list[dict]] = ("", [])

    # --- sending ----------------------------------------------------------------------------

    def send(self, job: Job) -> str:
        parent = parent_for(job)
        body = {
            "Meta": {"JOB_ID": str(job.pk), "JOB_KIND": job.kind},
            "IdPrefixTemplate": f"{job.kind}-{job.pk}",
        }
        params = {"idempotency_token": idempotency_token(job)}
        try:
            answer = call(
                f"dispatch {job} to {parent}",
                lambda n: n.job.request(
                    parent, "dispatch", method="post", params=params, json=body
                ).json(),
            )
        except NomadError as error:
            if "parameterized job not found" in error.body:
                raise DispatchError(
                    f"Nomad has no job {parent} to dispatch {job} to: register the refinery's "
                    "jobs with `manage.py nomad register`"
                ) from None
            raise
        child = answer.get("DispatchedJobID") if isinstance(answer, dict) else None
        if not child:
            raise DispatchError(f"Nomad's answer to the dispatch of {job} names no job: {answer!r}")
        return child

    # --- what became of it ------------------------------------------------------------------

    def _child(self, job: Job) -> dict | None:
        """The dispatched child job, or None when Nomad no longer has it."""
        try:
            return call(f"read {job.dispatch_id}", lambda n: n.job.get_job(job.dispatch_id))
        except NomadError as error:
            if error.not_found:
                return None
            raise

    def status(self, job: Job) -> DispatchStatus:
        """From the child job and its allocations. A job that started is as its
        own allocation (the one run_job recorded as its worker) is: when Nomad
        replaced that allocation after a lost node, the replacement finds the
        job already started and leaves it. Otherwise an allocation still pending
        or running wins, a child waiting for placement is pending, and a finished
        one is what its latest allocation says. Gone: Nomad no longer has the
        child (garbage-collected or purged), or it never placed anything."""
        if not is_child_id(job.dispatch_id):
            return DispatchStatus.GONE
        child = self._child(job)
        if child is None:
            return DispatchStatus.GONE
        own = own_allocation_id(job)
        if child.get("Status") == "pending" and not own:
            # Waiting for placement (a backlog is mostly this): one request is enough.
            return DispatchStatus.PENDING
        allocations = call(
            f"list the allocations of {job.dispatch_id}",
            lambda n: n.job.get_allocations(job.dispatch_id),
        )
        self._last_allocations = (job.dispatch_id, list(allocations or []))
        mine = [a for a in allocations if own and a.get("ID") == own]
        if mine:
            return status_from("dead", mine)
        return status_from(child.get("Status", ""), allocations)

    def work_end(self, job: Job) -> WorkEnd | None:
        """How the job's Nomad task ended: its allocation's task events (exit code,
        signal, a driver's or template's failure) and the end of its stderr, read
        from Nomad (runner/nomad/task_end.py)."""
        return task_end(job)

    def placement_failure(self, job: Job) -> str | None:
        """Why Nomad cannot place the job, while its child waits for placement
        (the latest evaluation's FailedTGAllocs), or None. A job also waits like
        this when the cluster is merely full: whoever fails it on this ground
        should let it wait REFINERY_NOMAD_PLACEMENT_TIMEOUT_S first."""
        if not is_child_id(job.dispatch_id):
            return None
        child = self._child(job)
        if child is None or child.get("Status") != "pending":
            return None
        evaluations = call(
            f"list the evaluations of {job.dispatch_id}",
            lambda n: n.job.get_evaluations(job.dispatch_id),
        )
        failed = [e for e in evaluations or [] if e.get("FailedTGAllocs")]
        if not failed:
            return None
        latest = max(failed, key=lambda e: e.get("CreateIndex", 0))
        return describe_placement_failure(child, latest["FailedTGAllocs"])

    def unplaceable(self, job: Job) -> str | None:
        """The reason to fail a queued job that cannot start where it was sent: its
        task waits for a variable that is missing (Nomad would wait for ever), or
        Nomad has not been able to place it for REFINERY_NOMAD_PLACEMENT_TIMEOUT_S
        since it was dispatched. None otherwise."""
        if job.state != JobState.QUEUED or job.dispatched_at is None:
            return None
        waiting = self._template_wait(job)
        if waiting:
            return (
                f"its Nomad task cannot start: {waiting}: write the job's variables with "
                "`manage.py nomad register`"
            )
        waited = (timezone.now() - job.dispatched_at).total_seconds()
        limit = settings.REFINERY_NOMAD_PLACEMENT_TIMEOUT_S
        if waited < limit:
            return None
        reason = self.placement_failure(job)
        if reason is None:
            return None
        reason = f"not placed by Nomad within {limit} s: {reason}"
        if getattr(job, "pipeline", "") in engine_runnable():
            reason += (
                f"; if basecalling engines outside the cluster should run {job.pipeline} "
                f"jobs, set REFINERY_ENGINE_PIPELINES={job.pipeline}"
            )
        return reason

    def _template_wait(self, job: Job) -> str | None:
        """What a placed task of the job waits for, if a template keeps it pending,
        from the allocations `status` just read (a job still waiting for placement
        has none: no request more per job of a backlog)."""
        dispatch_id, allocations = self._last_allocations
        if dispatch_id != job.dispatch_id:
            return None
        return template_wait(allocations)

    # --- stopping and counting ---------------------------------------------------------------

    def stop(self, job: Job) -> None:
        """Deregister (and purge) the child: Nomad stops its allocation, if any."""
        if not is_child_id(job.dispatch_id):
            return
        call(
            f"stop {job.dispatch_id}",
            lambda n: n.job.deregister_job(job.dispatch_id, purge=True),
        )

    def capacity(self) -> Capacity:
        """Children waiting for placement (queued) and placed (running) of every
        REFINERY_ parameterized job, from their summaries."""
        states = parent_states(all_parent_ids())
        registered = [s for s in states if s.registered]
        if not registered:
            raise DispatchError(
                "Nomad has none of the refinery's parameterized jobs: "
                "run `manage.py nomad register`"
            )
        return Capacity(
            queued=sum(s.pending for s in registered),
            running=sum(s.running for s in registered),
        )


def status_from(child_status: str, allocations: Iterable[dict]) -> DispatchStatus:
    """A dispatch's status from its child's Status and its allocation stubs."""
    allocations = list(allocations)
    live = [a for a in allocations if a.get("ClientStatus") in LIVE]
    if live:
        if any(a.get("ClientStatus") == "running" for a in live):
            return DispatchStatus.RUNNING
        return DispatchStatus.PENDING
    if child_status == "pending" or (child_status == "running" and not allocations):
        return DispatchStatus.PENDING
    if not allocations:
        return DispatchStatus.GONE  # stopped before anything was placed
    latest = max(allocations, key=lambda a: (a.get("CreateIndex", 0), a.get("ModifyIndex", 0)))
    return CLIENT_STATUS.get(latest.get("ClientStatus", ""), DispatchStatus.FAILED)


def _counted(counts: dict | None, what: str) -> list[str]:
    return [
        f'{what} "{key}" on {n} node{"s" if n != 1 else ""}' for key, n in (counts or {}).items()
    ]


def describe_placement_failure(child: dict, failed_groups: dict) -> str:
    """Nomad's AllocMetric of a failed placement, in words: what the job asks for
    and why each node was not good enough."""
    asks = []
    for group in child.get("TaskGroups") or []:
        for task in group.get("Tasks") or []:
            resources = task.get("Resources") or {}
            ask = f"{resources.get('MemoryMB', '?')} MB RAM, {resources.get('CPU', '?')} MHz CPU"
            devices = [
                f"{d.get('Count', 1)} {d.get('Name')}" for d in resources.get("Devices") or []
            ]
            asks.append(ask + "".join(f", {d}" for d in devices))
    parts = []
    for group, metric in sorted(failed_groups.items()):
        evaluated = int(metric.get("NodesEvaluated") or 0)
        reasons = []
        if evaluated == 0:
            datacenters = ", ".join(child.get("Datacenters") or []) or "any datacenter"
            reasons.append(f"no ready, eligible node in {datacenters}")
        reasons += _counted(metric.get("ClassFiltered"), "class filtered")
        reasons += _counted(metric.get("ConstraintFiltered"), "constraint")
        reasons += _counted(metric.get("DimensionExhausted"), "exhausted")
        reasons += _counted(metric.get("QuotaExhausted"), "quota exhausted")
        coalesced = int(metric.get("CoalescedFailures") or 0)
        more = f" (and {coalesced} more allocations)" if coalesced else ""
        parts.append(
            f'task group "{group}": {evaluated} node{"s" if evaluated != 1 else ""} evaluated'
            f"{more}: {'; '.join(reasons) or 'no reason given'}"
        )
    ask = f" (it asks for {'; '.join(asks)})" if asks else ""
    return f"Nomad cannot place {child.get('ID', 'the job')}{ask}: {' | '.join(parts)}"
