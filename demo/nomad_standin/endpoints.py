"""The HTTP API's routes, and the endpoints that change jobs: register, dispatch
(with idempotency tokens) and deregister (with ``purge``)."""

from __future__ import annotations

import contextlib
import copy
import json
import threading
import time
import uuid
from typing import Any

from .api_types import JOB_DISPATCH_REQUEST, JOB_REGISTER_REQUEST
from .canonicalize import canonicalize_job
from .go_json import decode, decode_body
from .go_text import HTTPError, go_quote, multierror, parse_go_bool
from .state import StandinState, _Job
from .validation import validate_dispatch, validate_job

# How long a dispatch waits for a concurrent one with the same token when the
# stand-in reproduces hashicorp/nomad#26690 (``racy_idempotency``).
TOKEN_RACE_WINDOW_S = 2.0


class Endpoints(StandinState):
    """The routing and job-changing endpoints of :class:`~.server.NomadStandin`."""

    def _route(self, method: str, path: str, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        def only(*methods: str) -> None:
            if method not in methods:
                raise HTTPError(405, "Invalid method")

        ns = query.get("namespace") or "default"
        if path == "/v1/jobs":
            if method == "GET":
                return 200, self._list_jobs(query)
            only("PUT", "POST")
            return 200, self._register(None, body, query)
        if path.startswith("/v1/job/"):
            rest = path[len("/v1/job/") :]
            if rest.endswith("/allocations"):
                only("GET")
                job_key = (ns, rest[: -len("/allocations")])
                with self._lock:
                    return 200, [self._alloc_stub(a) for a in self._job_allocs(job_key)]
            if rest.endswith("/evaluations"):
                only("GET")
                key = (ns, rest[: -len("/evaluations")])
                with self._lock:
                    evs = [e for e in self._evals.values() if e["_key"] == key]
                    return 200, [self._eval_out(e) for e in evs]
            if rest.endswith("/summary"):
                only("GET")
                with self._lock:
                    j = self._jobs.get((ns, rest[: -len("/summary")]))
                    if j is None:
                        raise HTTPError(404, "job not found")
                    return 200, self._summary(j)
            if rest.endswith("/dispatch"):
                only("PUT", "POST")
                return 200, self._dispatch(rest[: -len("/dispatch")], body, query)
            if method == "GET":
                with self._lock:
                    j = self._jobs.get((ns, rest))
                    if j is None:
                        raise HTTPError(404, "job not found")
                    return 200, self._job_out(j)
            if method in ("PUT", "POST"):
                return 200, self._register(rest, body, query)
            if method == "DELETE":
                return 200, self._deregister(rest, query)
            raise HTTPError(405, "Invalid method")
        if path.startswith("/v1/evaluation/"):
            only("GET")
            rest = path[len("/v1/evaluation/") :]
            with self._lock:
                if rest.endswith("/allocations"):
                    ev_id = rest[: -len("/allocations")]
                    return 200, [
                        self._alloc_stub(a) for a in self._allocs.values() if a.eval_id == ev_id
                    ]
                ev = self._evals.get(rest)
                if ev is None:
                    raise HTTPError(404, "eval not found")
                return 200, self._eval_out(ev)
        if path == "/v1/evaluations":
            only("GET")
            with self._lock:
                prefix = query.get("prefix", "")
                return 200, [
                    self._eval_out(e) for e in self._evals.values() if e["ID"].startswith(prefix)
                ]
        if path.startswith("/v1/allocation/"):
            only("GET")
            with self._lock:
                a = self._allocs.get(path[len("/v1/allocation/") :])
                if a is None:
                    raise HTTPError(404, "alloc not found")
                return 200, self._alloc_full(a)
        if path == "/v1/allocations":
            only("GET")
            with self._lock:
                prefix = query.get("prefix", "")
                return 200, [
                    self._alloc_stub(a) for a in self._allocs.values() if a.id.startswith(prefix)
                ]
        if path == "/v1/nodes":
            only("GET")
            return 200, self._list_nodes(query)
        if path.startswith("/v1/node/"):
            only("GET")
            rest = path[len("/v1/node/") :]
            with self._lock:
                if rest.endswith("/allocations"):
                    node_id = rest[: -len("/allocations")]
                    return 200, [
                        self._alloc_full(a) for a in self._allocs.values() if a.node_id == node_id
                    ]
                n = next((n for n in self.nodes if n["ID"] == rest), None)
                if n is None:
                    raise HTTPError(404, "node not found")
                return 200, self._node_out(n, resources=True, full=True)
        if path.startswith("/v1/client/fs/logs/"):
            only("GET")
            return 200, self._logs(path[len("/v1/client/fs/logs/") :], query)
        if path == "/v1/status/leader":
            only("GET")
            return 200, "127.0.0.1:4647"
        if path == "/v1/status/peers":
            only("GET")
            return 200, ["127.0.0.1:4647"]
        raise HTTPError(404, "404 page not found\n")

    def _register(self, url_id: str | None, body: bytes, query: dict[str, str]) -> dict:
        req = decode(decode_body(body), JOB_REGISTER_REQUEST)
        job = req.get("Job")
        if job is None:
            raise HTTPError(400, "Job must be specified")
        if job.get("ID") is None:
            raise HTTPError(400, "Job ID hasn't been provided")
        if url_id is not None and job["ID"] != url_id:
            raise HTTPError(400, "Job ID does not match name")
        ns = query.get("namespace") or req.get("Namespace") or job.get("Namespace") or "default"
        region = query.get("region") or req.get("Region") or job.get("Region") or self.region
        if region == "global":
            region = self.region
        spec = canonicalize_job(job, ns, region)
        payload = spec.pop("Payload", None)
        errors = validate_job(spec)
        if errors:
            raise HTTPError(500, multierror(errors))
        with self._lock:
            existing = self._jobs.get((ns, spec["ID"]))
            comparable = json.dumps(spec, sort_keys=True, default=str)
            changed = existing is None or comparable != json.dumps(
                {**existing.spec, "Stop": existing.stop}, sort_keys=True, default=str
            )
            index = self._next_index()
            was_stopped = existing is not None and existing.stop
            if changed:
                j = _Job(spec, payload)
                if existing is not None:
                    j.version = existing.version + 1
                    j.create_index = existing.create_index
                    j.parent_id = existing.parent_id
                    j.dispatched = existing.dispatched
                    j.token = existing.token
                else:
                    j.create_index = index
                j.modify_index = j.job_modify_index = index
                self._jobs[j.key] = j
            else:
                j = existing
            response = {
                "EvalID": "",
                "EvalCreateIndex": 0,
                "JobModifyIndex": j.job_modify_index,
                "Warnings": "",
                "Index": index,
                "LastContact": 0,
                "KnownLeader": False,
                "NextToken": "",
            }
            if not (j.is_parameterized or j.is_periodic):
                ev = self._new_eval(j, "job-register", status="pending")
                response["EvalID"] = ev["ID"]
                response["EvalCreateIndex"] = ev["CreateIndex"]
                response["Index"] = ev["CreateIndex"]
                placements = []
                if not j.stop:
                    for tg in j.spec["TaskGroups"]:
                        for i in range(tg["Count"]):
                            if was_stopped or not self._has_alloc(j, tg["Name"], i):
                                placements.append((tg["Name"], i, None, False))
                self._place(ev, j, placements)
            self._cond.notify_all()
            return response

    def _has_alloc(self, job: _Job, group: str, index: int) -> bool:
        return any(
            a.key == job.key
            and a.group == group
            and a.index == index
            and (not a.terminal() or a.client_status == "complete")
            for a in self._allocs.values()
        )

    def _dispatch(self, parent_id: str, body: bytes, query: dict[str, str]) -> dict:
        req = decode(decode_body(body), JOB_DISPATCH_REQUEST)
        if req.get("JobID") and req["JobID"] != parent_id:
            raise HTTPError(400, "Job ID does not match")
        ns = query.get("namespace") or req.get("Namespace") or "default"
        token = query.get("idempotency_token") or ""
        payload = req.get("Payload") or b""
        meta = req.get("Meta") or {}
        if token and self.racy_idempotency:
            return self._racy_dispatch(parent_id, ns, token, req, payload, meta)
        with self._lock:
            parent = self._checked_parent(ns, parent_id, payload, meta)
            replayed = self._replay(parent, ns, token) if token else None
            if replayed is not None:
                return replayed
            return self._dispatch_child(parent, ns, token, req, payload, meta)

    def _replay(self, parent: _Job, ns: str, token: str) -> dict | None:
        """The answer for a token an existing child was dispatched with, if any."""
        for existing in sorted(list(self._jobs.values()), key=lambda j: j.id):
            if existing.parent_id == parent.id and existing.ns == ns and existing.token == token:
                return {
                    "DispatchedJobID": existing.id,
                    "EvalID": "",
                    "EvalCreateIndex": 0,
                    "JobCreateIndex": existing.create_index,
                    "Index": existing.modify_index,
                }
        return None

    def _racy_dispatch(self, parent_id, ns, token, req, payload, meta) -> dict:
        """hashicorp/nomad#26690: the token is checked before the state lock is
        taken, so concurrent dispatches with one token may each create a child."""
        with self._lock:
            parent = self._checked_parent(ns, parent_id, payload, meta)
        replayed = self._replay(parent, ns, token)  # outside the lock: the bug
        if replayed is not None:
            return replayed
        with self._lock:
            race = self._token_races.setdefault((ns, parent_id, token), threading.Barrier(2))
        # Without a concurrent dispatch, this one alone creates a child.
        with contextlib.suppress(threading.BrokenBarrierError):
            race.wait(TOKEN_RACE_WINDOW_S)
        with self._lock:
            self._token_races.pop((ns, parent_id, token), None)
            return self._dispatch_child(parent, ns, token, req, payload, meta)

    def _checked_parent(self, ns: str, parent_id: str, payload: bytes, meta: dict) -> _Job:
        parent = self._jobs.get((ns, parent_id))
        if parent is None:
            raise HTTPError(500, "parameterized job not found")
        if not parent.is_parameterized:
            raise HTTPError(500, f"Specified job {go_quote(parent_id)} is not a parameterized job")
        if parent.stop:
            raise HTTPError(500, f"Specified job {go_quote(parent_id)} is stopped")
        error = validate_dispatch(parent.spec["ParameterizedJob"], payload, meta)
        if error:
            raise HTTPError(500, error)
        return parent

    def _dispatch_child(self, parent: _Job, ns: str, token: str, req, payload, meta) -> dict:
        """Create the child and place it (under the lock)."""
        prefix = req.get("IdPrefixTemplate") or ""
        suffix = f"{prefix}-" if prefix else ""
        child_id = f"{parent.id}/dispatch-{suffix}{int(time.time())}-{uuid.uuid4().hex[:8]}"
        spec = copy.deepcopy(parent.spec)
        spec["ID"] = spec["Name"] = child_id
        merged = dict(spec.get("Meta") or {})
        merged.update(meta)
        spec["Meta"] = merged if (merged or spec.get("Meta") is not None) else None
        child = _Job(spec, payload)
        child.parent_id = parent.id
        child.dispatched = True
        child.token = token
        child.create_index = child.modify_index = child.job_modify_index = self._next_index()
        self._jobs[child.key] = child
        ev = self._new_eval(child, "job-register", status="pending")
        placements = [
            (tg["Name"], i, None, False)
            for tg in child.spec["TaskGroups"]
            for i in range(tg["Count"])
        ]
        self._place(ev, child, placements)
        self._cond.notify_all()
        return {
            "DispatchedJobID": child.id,
            "EvalID": ev["ID"],
            "EvalCreateIndex": ev["CreateIndex"],
            "JobCreateIndex": child.create_index,
            "Index": ev["CreateIndex"],
        }

    def _deregister(self, job_id: str, query: dict[str, str]) -> dict:
        purge = False
        if query.get("purge"):
            try:
                purge = parse_go_bool(query["purge"])
            except ValueError as e:
                raise HTTPError(
                    500,
                    f'Failed to parse value of "purge" ({query["purge"]}) as a bool: {e}',
                ) from None
        ns = query.get("namespace") or "default"
        response = {
            "EvalID": "",
            "EvalCreateIndex": 0,
            "JobModifyIndex": 0,
            "VolumeEvalID": "",
            "VolumeEvalIndex": 0,
            "Index": 0,
            "LastContact": 0,
            "KnownLeader": False,
            "NextToken": "",
        }
        with self._lock:
            j = self._jobs.get((ns, job_id))
            if j is None:
                return response
            index = self._next_index()
            response.update(JobModifyIndex=index, EvalCreateIndex=index, Index=index)
            j.stop = True
            j.modify_index = j.job_modify_index = index
            if not (j.is_parameterized or j.is_periodic):
                ev = self._new_eval(j, "job-deregister", status="complete")
                ev["Type"] = "service"
                response["EvalID"] = ev["ID"]
                for e in self._evals.values():
                    if e["_key"] == j.key and e["Status"] in ("blocked", "pending") and e is not ev:
                        e["Status"] = "canceled"
                        e["StatusDescription"] = "job deregistered"
                        e["_pending"] = []
                for a in self._job_allocs(j.key):
                    if a.desired_status == "run" and not a.terminal():
                        self._stop_alloc(a, "alloc not needed due to job update")
            if purge:
                del self._jobs[j.key]
            self._unblock()
            self._cond.notify_all()
            return response
