"""What a caller reads directly, without the HTTP API: the recorded requests, jobs,
allocations, evaluations, logs, and waiting for a job's status."""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from .state import StandinState


class Inspection(StandinState):
    """The inspection methods of :class:`~.server.NomadStandin`."""

    @property
    def requests(self) -> list[dict]:
        """Every request so far: method, path (decoded), query (first values),
        json (the decoded body, or None), body (text), headers, status."""
        with self._lock:
            return copy.deepcopy(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def job(self, job_id: str, namespace: str = "default") -> dict | None:
        """What GET /v1/job/<id> would answer, or None."""
        with self._lock:
            j = self._jobs.get((namespace, job_id))
            return None if j is None else self._job_out(j)

    def children(self, parent_id: str, namespace: str = "default") -> list[str]:
        with self._lock:
            kids = [
                j for j in self._jobs.values() if j.ns == namespace and j.parent_id == parent_id
            ]
            return [j.id for j in sorted(kids, key=lambda j: j.create_index)]

    def allocations(self, job_id: str, namespace: str = "default") -> list[dict]:
        with self._lock:
            return [self._alloc_stub(a) for a in self._job_allocs((namespace, job_id))]

    def evaluation(self, eval_id: str) -> dict | None:
        with self._lock:
            ev = self._evals.get(eval_id)
            return None if ev is None else self._eval_out(ev)

    def logs(
        self,
        job_id: str,
        task: str | None = None,
        stream: str = "stdout",
        namespace: str = "default",
    ) -> str:
        """The captured output of the job's latest allocation."""
        with self._lock:
            allocs = self._job_allocs((namespace, job_id))
            if not allocs:
                raise ValueError(f"job {job_id!r} has no allocation")
            a = allocs[-1]
            task = task or next(iter(a.tasks))
            path = self._log_path(a, task, stream)
        try:
            with open(path, "rb") as f:
                return f.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def allocation_file(self, alloc_id: str, task: str, path: str) -> str:
        """A file in the allocation's task directory (a rendered template, say)."""
        with self._lock:
            directory = os.path.join(self._allocs[alloc_id].dir, task)
        with open(os.path.join(directory, path)) as f:
            return f.read()

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Wait until ``predicate()`` (called under the state lock) is truthy."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                result = predicate()
                if result:
                    return result
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("condition not reached in time")
                self._cond.wait(min(left, 0.1))

    def wait_for_job(
        self,
        job_id: str,
        status: str | Iterable[str] = "dead",
        timeout: float = 10.0,
        namespace: str = "default",
    ) -> dict:
        """Wait until the job's Status is ``status`` (or one of them); the job."""
        wanted = {status} if isinstance(status, str) else set(status)

        def reached() -> dict | None:
            j = self._jobs.get((namespace, job_id))
            if j is not None and self._job_status(j) in wanted:
                return self._job_out(j)
            return None

        try:
            return self.wait_for(reached, timeout)
        except TimeoutError:
            now = self.job(job_id, namespace)
            state = now["Status"] if now else "not found"
            raise TimeoutError(
                f"job {job_id!r} is {state}, not {sorted(wanted)}, after {timeout}s"
            ) from None
