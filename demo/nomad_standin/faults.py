"""Fault injection: an unreachable or hanging server, injected error answers,
unplaceable dispatches, lost and hand-finished allocations, garbage collection, node
changes."""

from __future__ import annotations

import copy
import socket

from .state import StandinState


class FaultInjection(StandinState):
    """The fault-injection methods of :class:`~.server.NomadStandin`."""

    def set_unreachable(self, unreachable: bool | str = True) -> None:
        """Stop answering on the same port.

        ``True`` or ``"refuse"``: the listening socket is closed, connections are
        refused. ``"hang"``: connections are accepted by the kernel but never
        answered, so the client times out. ``False``: listen and answer again on
        the same port. Jobs keep running meanwhile.
        """
        if not self._alive:
            raise RuntimeError("the stand-in is not started")
        mode = "refuse" if unreachable is True else unreachable
        if mode not in (False, "refuse", "hang"):
            raise ValueError(f"unknown mode {unreachable!r}")
        self._unserve()
        self._close_blackhole()
        if mode == "hang":
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", self._port))
            s.listen(128)
            self._blackhole = s
        elif mode is False:
            self._serve()
        self.unreachable = mode

    def fail_next(
        self,
        n: int = 1,
        status: int = 500,
        body: str = "No cluster leader",
        *,
        method: str | None = None,
        path_contains: str | None = None,
    ) -> None:
        """Answer the next ``n`` requests (optionally only those with this method
        and a path containing ``path_contains``) with ``status`` and plain-text
        ``body`` instead of handling them."""
        with self._lock:
            for _ in range(n):
                self._fail_next.append(
                    {"status": status, "body": body, "method": method, "path": path_contains}
                )

    def hold_pending(self, target: bool | str = True) -> None:
        """Make new placements impossible: for every job when ``True``, or for the
        job or parameterized parent named ``target``. The evaluation ends complete
        with FailedTGAllocs (memory exhausted on every node) and a blocked
        evaluation; the job stays pending until :meth:`release_pending`.
        ``hold_pending(False)`` is ``release_pending()``."""
        if target is False:
            self.release_pending()
            return
        with self._lock:
            if target is True:
                self._hold_all = True
            else:
                self._held.add(target)

    def release_pending(self, target: str | None = None) -> None:
        """Lift :meth:`hold_pending` (every hold, or the one for ``target``); blocked
        evaluations are then retried, as when capacity frees up."""
        with self._lock:
            if target is None:
                self._hold_all = False
                self._held.clear()
            else:
                self._held.discard(target)
            self._unblock()

    def lose_allocation(
        self, job_id: str, *, replace: bool = True, namespace: str = "default"
    ) -> list[str]:
        """As when the node of the job's live allocations is lost: kill their
        processes (SIGKILL), mark them ClientStatus ``lost`` / DesiredStatus
        ``stop``. Task states keep their last reported value, as on a real server.
        A replacement allocation is placed, as Nomad does for lost allocations even
        with reschedule attempts 0 (the job runs twice); ``replace=False`` leaves
        none, for a test that needs the lost allocation alone.
        Returns the lost allocation IDs."""
        with self._lock:
            allocs = self._live_allocations(namespace, job_id)
            for a in allocs:
                self._lose(a)
            if replace:
                job = self._jobs.get((namespace, job_id))
                if job is not None and not job.stop:
                    ev = self._new_eval(job, "node-update", status="pending")
                    self._place(ev, job, [(a.group, a.index, a, False) for a in allocs])
            self._unblock()
            self._cond.notify_all()
            return [a.id for a in allocs]

    def _live_allocations(self, namespace: str, job_id: str) -> list:
        """The job's allocations that have not ended (call with the lock held);
        a ValueError when there is none."""
        allocs = [
            a for a in self._allocs.values() if a.key == (namespace, job_id) and not a.terminal()
        ]
        if not allocs:
            raise ValueError(f"job {job_id!r} has no live allocation")
        return allocs

    def finish_allocation(
        self,
        job_id: str,
        exit_code: int = 0,
        *,
        signal_number: int = 0,
        task: str | None = None,
        namespace: str = "default",
        oom_killed: bool = False,
    ) -> str:
        """With ``run_children=False``: end the running task(s) of the job's live
        allocation as if the process exited with ``exit_code`` (killed by the kernel
        for memory with ``oom_killed``, as the docker driver reports it). The restart
        and reschedule policies apply as for a real process. Returns the allocation ID."""
        with self._lock:
            allocs = self._live_allocations(namespace, job_id)
            a = allocs[-1]
            if not a.virtual:
                raise ValueError("this allocation runs a real process; use run_children=False")
            tasks = [t for t in a.tasks.values() if t.state == "running"]
            if task is not None:
                tasks = [t for t in tasks if t.name == task]
            if not tasks:
                raise ValueError(f"allocation {a.id} has no running task {task or ''}")
            for t in tasks:
                self._task_exited(a, t, exit_code, signal_number, oom_killed=oom_killed)
            return a.id

    def gc(self, job_id: str | None = None, *, namespace: str = "default") -> list[str]:
        """Garbage-collect dead jobs (with their evaluations and allocations), as
        Nomad's job GC does after ``job_gc_threshold``: afterwards GET answers 404
        and an idempotency token can be used again. With ``job_id``, only that job;
        it must be dead. Returns the collected job IDs."""
        with self._lock:
            if job_id is not None:
                job = self._jobs.get((namespace, job_id))
                if job is None:
                    raise ValueError(f"job {job_id!r} not found")
                if self._job_status(job) != "dead":
                    raise ValueError(f"job {job_id!r} is {self._job_status(job)}, not dead")
                jobs = [job]
            else:
                jobs = [j for j in self._jobs.values() if self._job_status(j) == "dead"]
            for j in jobs:
                del self._jobs[j.key]
                for ev_id in [e["ID"] for e in self._evals.values() if e["_key"] == j.key]:
                    del self._evals[ev_id]
                for a_id in [a.id for a in self._allocs.values() if a.key == j.key]:
                    if self._allocs[a_id].terminal():
                        del self._allocs[a_id]
            self._cond.notify_all()
            return [j.id for j in jobs]

    def set_node(
        self,
        node: str,
        *,
        status: str | None = None,
        eligibility: str | None = None,
        drain: bool | None = None,
        replace_lost: bool = True,
    ) -> dict:
        """Change a node (by ID or name). Status ``down`` loses its allocations and
        places their replacements unless ``replace_lost=False`` (see
        :meth:`lose_allocation`); becoming ready/eligible retries blocked evals."""
        with self._lock:
            n = self._node(node)
            if n is None:
                raise ValueError(f"no node {node!r}")
            if status is not None:
                n["Status"] = status
            if eligibility is not None:
                n["SchedulingEligibility"] = eligibility
            if drain is not None:
                n["Drain"] = drain
            if status == "down":
                lost = [
                    a for a in self._allocs.values() if a.node_id == n["ID"] and not a.terminal()
                ]
                for a in lost:
                    self._lose(a)
                if replace_lost:
                    for a in lost:
                        job = self._jobs.get(a.key)
                        if job is not None and not job.stop:
                            ev = self._new_eval(job, "node-update", status="pending")
                            self._place(ev, job, [(a.group, a.index, a, False)])
            self._unblock()
            self._cond.notify_all()
            return copy.deepcopy(n)
