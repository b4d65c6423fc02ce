"""What the API answers about jobs, summaries, evaluations and allocations (as
Nomad's state store computes job status), and the logs endpoint."""

from __future__ import annotations

import base64
import copy
import json
import time
from collections.abc import Iterator
from typing import Any

from .go_text import HTTPError, go_quote, parse_go_bool, rfc3339
from .state import TERMINAL_EVAL, StandinState, _Alloc, _Job, _Task


class Answers(StandinState):
    """The read-only answers of :class:`~.server.NomadStandin`."""

    def _job_allocs(self, key: tuple[str, str]) -> list[_Alloc]:
        return sorted(
            (a for a in self._allocs.values() if a.key == key), key=lambda a: a.create_index
        )

    def _job_status(self, j: _Job) -> str:
        """state store getJobStatus."""
        if j.is_parameterized or j.is_periodic or j.type == "system":
            return "dead" if j.stop else "running"
        seen = False
        for a in self._allocs.values():
            if a.key == j.key and a.job_create_index == j.create_index:
                seen = True
                if not a.terminal():
                    return "running"
        for e in self._evals.values():
            if e["_key"] == j.key:
                seen = True
                if e["Status"] not in TERMINAL_EVAL:
                    return "pending"
        return "dead" if seen else "pending"

    def _job_out(self, j: _Job) -> dict:
        out = copy.deepcopy(j.spec)
        out.update(
            Stop=j.stop,
            ParentID=j.parent_id,
            Dispatched=j.dispatched,
            DispatchIdempotencyToken=j.token,
            Payload=base64.b64encode(j.payload).decode() if j.payload else None,
            Status=self._job_status(j),
            StatusDescription="",
            Stable=False,
            Version=j.version,
            SubmitTime=j.submit_time,
            CreateIndex=j.create_index,
            ModifyIndex=j.modify_index,
            JobModifyIndex=j.job_modify_index,
        )
        return out

    def _summary(self, j: _Job) -> dict:
        groups = {
            g["Name"]: {
                "Queued": 0,
                "Complete": 0,
                "Failed": 0,
                "Running": 0,
                "Starting": 0,
                "Lost": 0,
                "Unknown": 0,
            }
            for g in j.spec["TaskGroups"]
        }
        field = {
            "pending": "Starting",
            "running": "Running",
            "complete": "Complete",
            "failed": "Failed",
            "lost": "Lost",
            "unknown": "Unknown",
        }
        for a in self._allocs.values():
            if a.key == j.key and a.job_create_index == j.create_index and a.group in groups:
                groups[a.group][field[a.client_status]] += 1
        for e in self._evals.values():
            if e["_key"] == j.key and e["Status"] == "blocked":
                for p in e["_pending"]:
                    if p[0] in groups:
                        groups[p[0]]["Queued"] += 1
        children = {"Pending": 0, "Running": 0, "Dead": 0}
        for c in self._jobs.values():
            if c.ns == j.ns and c.parent_id == j.id and c.parent_id:
                children[self._job_status(c).capitalize()] += 1
        return {
            "JobID": j.id,
            "Namespace": j.ns,
            "Summary": groups,
            "Children": children,
            "CreateIndex": j.create_index,
            "ModifyIndex": j.modify_index,
        }

    def _list_jobs(self, query: dict[str, str]) -> list[dict]:
        ns = query.get("namespace") or "default"
        prefix = query.get("prefix", "")
        with_meta = False
        if query.get("meta"):
            try:
                with_meta = parse_go_bool(query["meta"])
            except ValueError as e:
                raise HTTPError(
                    500, f'Failed to parse value of "meta" ({query["meta"]}) as a bool: {e}'
                ) from None
        out = []
        with self._lock:
            for j in sorted(self._jobs.values(), key=lambda j: (j.ns, j.id)):
                if (ns != "*" and j.ns != ns) or not j.id.startswith(prefix):
                    continue
                stub = {
                    "ID": j.id,
                    "ParentID": j.parent_id,
                    "Name": j.spec["Name"],
                    "Namespace": j.ns,
                    "Datacenters": j.spec["Datacenters"],
                    "NodePool": j.spec["NodePool"],
                    "Multiregion": j.spec.get("Multiregion"),
                    "Type": j.type,
                    "Priority": j.spec["Priority"],
                    "Periodic": j.is_periodic,
                    "ParameterizedJob": j.is_parameterized,
                    "Stop": j.stop,
                    "Status": self._job_status(j),
                    "StatusDescription": "",
                    "JobSummary": self._summary(j),
                    "CreateIndex": j.create_index,
                    "ModifyIndex": j.modify_index,
                    "JobModifyIndex": j.job_modify_index,
                    "SubmitTime": j.submit_time,
                }
                if with_meta:
                    stub["Meta"] = j.spec.get("Meta")
                out.append(stub)
        return out

    def _eval_out(self, ev: dict) -> dict:
        return {k: copy.deepcopy(v) for k, v in ev.items() if not k.startswith("_")}

    def _task_state_out(self, t: _Task) -> dict:
        return {
            "State": t.state,
            "Failed": t.failed,
            "Restarts": t.restarts,
            "LastRestart": rfc3339(t.last_restart),
            "StartedAt": rfc3339(t.started_at),
            "FinishedAt": rfc3339(t.finished_at),
            "Events": copy.deepcopy(t.events),
            "TaskHandle": None,
        }

    def _alloc_stub(self, a: _Alloc) -> dict:
        return {
            "ID": a.id,
            "EvalID": a.eval_id,
            "Name": a.name,
            "Namespace": a.ns,
            "NodeID": a.node_id,
            "NodeName": a.node_name,
            "JobID": a.job_id,
            "JobType": a.job_type,
            "JobVersion": a.job_version,
            "TaskGroup": a.group,
            "AllocatedResources": None,
            "DesiredStatus": a.desired_status,
            "DesiredDescription": a.desired_description,
            "ClientStatus": a.client_status,
            "ClientDescription": a.client_description,
            "DesiredTransition": {
                "Migrate": None,
                "Reschedule": None,
                "ForceReschedule": None,
                "NoShutdownDelay": None,
            },
            "TaskStates": {name: self._task_state_out(t) for name, t in a.tasks.items()},
            "DeploymentStatus": None,
            "FollowupEvalID": a.followup_eval_id,
            "NextAllocation": a.next_allocation,
            "RescheduleTracker": (
                {"Events": copy.deepcopy(a.reschedule_events)} if a.reschedule_events else None
            ),
            "PreemptedAllocations": None,
            "PreemptedByAllocation": "",
            "CreateIndex": a.create_index,
            "ModifyIndex": a.modify_index,
            "CreateTime": a.create_time,
            "ModifyTime": a.modify_time,
        }

    def _alloc_full(self, a: _Alloc) -> dict:
        out = self._alloc_stub(a)
        job = copy.deepcopy(a.job_spec)
        job.update(ParentID=a.parent_id, Dispatched=bool(a.parent_id))
        out.update(
            Job=job,
            PreviousAllocation=a.previous_allocation,
            AllocModifyIndex=a.modify_index,
        )
        return out

    def _logs(self, alloc_id: str, query: dict[str, str]) -> Any:
        task = query.get("task", "")
        if not task:
            raise HTTPError(400, "must provide task name")
        flags = {}
        for name in ("follow", "plain"):
            value = query.get(name)
            flags[name] = False
            if value:
                try:
                    flags[name] = parse_go_bool(value)
                except ValueError as e:
                    raise HTTPError(400, f"failed to parse {name} field to boolean: {e}") from None
        kind = query.get("type", "")
        if kind not in ("stdout", "stderr"):
            raise HTTPError(400, "must provide log type (stdout/stderr)")
        offset = 0
        if query.get("offset"):
            try:
                offset = int(query["offset"])
            except ValueError:
                raise HTTPError(
                    400,
                    f"error parsing offset: strconv.ParseInt: parsing "
                    f'"{query["offset"]}": invalid syntax',
                ) from None
        origin = query.get("origin") or "start"
        if origin not in ("start", "end"):
            raise HTTPError(400, "origin must be start or end")
        with self._lock:
            a = self._allocs.get(alloc_id)
            if a is None:
                raise HTTPError(404, f"Unknown allocation {go_quote(alloc_id)}")
            if task not in a.tasks:
                raise HTTPError(404, f"Unknown task name {go_quote(task)}")
            path = self._log_path(a, task, kind)
        with open(path, "rb") as f:
            data = f.read()
        start = offset if origin == "start" else max(0, len(data) - offset)
        file_name = f"alloc/logs/{task}.{kind}.0"

        def frame(chunk: bytes, at: int) -> bytes:
            if flags["plain"]:
                return chunk
            return json.dumps(
                {
                    "Offset": at,
                    "Data": base64.b64encode(chunk).decode(),
                    "File": file_name,
                    "FileEvent": "",
                }
            ).encode()

        if not flags["follow"]:
            chunk = data[start:]
            return _Raw(frame(chunk, len(data)) if chunk else b"", "text/plain; charset=utf-8")

        def stream() -> Iterator[bytes]:
            pos = start
            while True:
                with open(path, "rb") as f:
                    f.seek(pos)
                    chunk = f.read()
                if chunk:
                    pos += len(chunk)
                    yield frame(chunk, pos)
                    continue
                with self._lock:
                    done = (not self._alive) or a.tasks[task].state == "dead" or a.frozen
                if done:
                    return
                time.sleep(0.05)

        return _Raw(stream(), "text/plain; charset=utf-8")


class _Raw:
    """A non-JSON answer: bytes, or an iterator of bytes streamed until it ends."""

    def __init__(self, body: bytes | Iterator[bytes], content_type: str):
        self.body = body
        self.content_type = content_type
