"""The scheduler over the fake nodes: evaluations, driver, CPU, memory and device
feasibility with bin-packing, blocked evaluations retried when capacity frees up, and
creating allocations."""

from __future__ import annotations

import fnmatch
import os
from typing import Any

from .go_text import rfc3339
from .state import StandinState, _Alloc, _event, _Job, _now, _Task, _uuid


def _device_matches(request: str, dev: dict) -> bool:
    parts = request.split("/")
    if len(parts) == 1:
        return dev["Type"] == parts[0]
    if len(parts) == 2:
        return dev["Vendor"] == parts[0] and dev["Type"] == parts[1]
    return (dev["Vendor"], dev["Type"], dev["Name"]) == tuple(parts[:3])


class Scheduler(StandinState):
    """The scheduling methods of :class:`~.server.NomadStandin`."""

    def _next_index(self) -> int:
        self._index += 1
        return self._index

    def _new_eval(self, job: _Job, triggered_by: str, *, status: str) -> dict:
        index = self._next_index()
        now = _now()
        ev = {
            "ID": _uuid(),
            "Namespace": job.ns,
            "Priority": job.spec["Priority"],
            "Type": job.type,
            "TriggeredBy": triggered_by,
            "JobID": job.id,
            "JobModifyIndex": job.job_modify_index,
            "NodeID": "",
            "NodeModifyIndex": 0,
            "DeploymentID": "",
            "Status": status,
            "StatusDescription": "",
            "Wait": 0,
            "WaitUntil": rfc3339(None),
            "NextEval": "",
            "PreviousEval": "",
            "BlockedEval": "",
            "RelatedEvals": None,
            "FailedTGAllocs": None,
            "ClassEligibility": None,
            "QuotaLimitReached": "",
            "EscapedComputedClass": False,
            "AnnotatePlan": False,
            "QueuedAllocations": None,
            "LeaderACL": "",
            "SnapshotIndex": index,
            "CreateIndex": index,
            "ModifyIndex": index,
            "CreateTime": now,
            "ModifyTime": now,
            "_key": job.key,
            "_pending": [],
        }
        self._evals[ev["ID"]] = ev
        return ev

    def _held_job(self, job: _Job) -> bool:
        return (
            self._hold_all
            or job.id in self._held
            or (bool(job.parent_id) and job.parent_id in self._held)
        )

    def _try_node(self, job: _Job, group: dict) -> tuple[dict | None, dict]:
        """Feasibility and bin-packing over the fake nodes: the chosen node (or
        None) and the AllocMetric Nomad would report."""
        metric: dict[str, Any] = {
            "NodesEvaluated": 0,
            "NodesFiltered": 0,
            "NodesInPool": 0,
            "NodesAvailable": {},
            "ClassFiltered": None,
            "ConstraintFiltered": None,
            "NodesExhausted": 0,
            "ClassExhausted": None,
            "DimensionExhausted": None,
            "QuotaExhausted": None,
            "ResourcesExhausted": None,
            "Scores": None,
            "ScoreMetaData": None,
            "AllocationTime": 0,
            "CoalescedFailures": 0,
        }
        pool = job.spec.get("NodePool") or "default"
        dcs = job.spec.get("Datacenters") or ["*"]
        in_pool = [n for n in self.nodes if pool in ("all", n["NodePool"])]
        metric["NodesInPool"] = len(in_pool)
        candidates = []
        for n in in_pool:
            if not any(fnmatch.fnmatchcase(n["Datacenter"], dc) for dc in dcs):
                continue
            if n["Status"] != "ready":
                continue
            metric["NodesAvailable"][n["Datacenter"]] = (
                metric["NodesAvailable"].get(n["Datacenter"], 0) + 1
            )
            if n["SchedulingEligibility"] != "eligible" or n["Drain"]:
                continue
            candidates.append(n)
        cpu = sum(t["Resources"]["CPU"] for t in group["Tasks"])
        mem = sum(t["Resources"]["MemoryMB"] for t in group["Tasks"])
        wanted_devices = [
            (d["Name"], d["Count"]) for t in group["Tasks"] for d in t["Resources"]["Devices"] or []
        ]
        drivers = {t["Driver"] for t in group["Tasks"]}
        fits: list[tuple[int, dict]] = []

        def bump(field: str, key: str) -> None:
            metric[field] = metric[field] or {}
            metric[field][key] = metric[field].get(key, 0) + 1

        for n in candidates:
            metric["NodesEvaluated"] += 1
            if self._held_job(job):
                metric["NodesExhausted"] += 1
                bump("DimensionExhausted", "memory")
                continue
            if not drivers <= set(n["Drivers"]):
                metric["NodesFiltered"] += 1
                bump("ConstraintFiltered", "missing drivers")
                continue
            used_cpu = used_mem = 0
            used_devices: dict[int, int] = {}
            for a in self._allocs.values():
                if a.node_id != n["ID"] or a.terminal():
                    continue
                c, m, devs = a.resources()
                used_cpu += c
                used_mem += m
                for name, count in devs:
                    for i, dev in enumerate(n["NodeResources"]["Devices"] or []):
                        if _device_matches(name, dev):
                            used_devices[i] = used_devices.get(i, 0) + count
                            break
            res, reserved = n["NodeResources"], n["ReservedResources"]
            free_cpu = res["Cpu"]["CpuShares"] - reserved["Cpu"]["CpuShares"] - used_cpu
            free_mem = res["Memory"]["MemoryMB"] - reserved["Memory"]["MemoryMB"] - used_mem
            if cpu > free_cpu:
                metric["NodesExhausted"] += 1
                bump("DimensionExhausted", "cpu")
                continue
            if mem > free_mem:
                metric["NodesExhausted"] += 1
                bump("DimensionExhausted", "memory")
                continue
            device_ok = True
            for name, count in wanted_devices:
                ok = False
                for i, dev in enumerate(res["Devices"] or []):
                    healthy = sum(1 for inst in dev["Instances"] if inst["Healthy"])
                    if _device_matches(name, dev) and healthy - used_devices.get(i, 0) >= count:
                        ok = True
                        break
                if not ok:
                    device_ok = False
                    break
            if not device_ok:
                metric["NodesExhausted"] += 1
                bump("DimensionExhausted", "devices: no devices match request")
                continue
            fits.append((free_mem - mem, n))
        if not fits:
            return None, metric
        fits.sort(key=lambda f: f[0])
        return fits[0][1], metric

    def _place(self, ev: dict, job: _Job, placements: list[tuple]) -> None:
        """Process an evaluation: place what fits; what does not is queued in a
        blocked evaluation (Nomad's behaviour for unplaceable allocations)."""
        failed: dict[str, dict] = {}
        queued: dict[str, int] = {}
        unplaced = []
        for placement in placements:
            group_name = placement[0]
            group = job.group(group_name)
            node, metric = self._try_node(job, group)
            if node is None:
                unplaced.append(placement)
                queued[group_name] = queued.get(group_name, 0) + 1
                if group_name in failed:
                    failed[group_name]["CoalescedFailures"] += 1
                else:
                    failed[group_name] = metric
                continue
            self._create_alloc(ev, job, node, *placement)
        ev["Status"] = "complete"
        ev["ModifyIndex"] = self._next_index()
        ev["ModifyTime"] = _now()
        ev["QueuedAllocations"] = {
            g["Name"]: queued.get(g["Name"], 0) for g in job.spec["TaskGroups"]
        }
        if unplaced:
            ev["FailedTGAllocs"] = failed
            blocked = self._new_eval(job, "queued-allocs", status="blocked")
            blocked["PreviousEval"] = ev["ID"]
            blocked["StatusDescription"] = "created due to placement conflicts"
            blocked["QueuedAllocations"] = dict(queued)
            blocked["ClassEligibility"] = {}
            blocked["_pending"] = unplaced
            ev["BlockedEval"] = blocked["ID"]

    def _unblock(self) -> None:
        """Retry blocked evaluations, as Nomad does when capacity changes."""
        if not self._alive:
            return
        blocked = sorted(
            (e for e in self._evals.values() if e["Status"] == "blocked"),
            key=lambda e: (-e["Priority"], e["CreateIndex"]),
        )
        for ev in blocked:
            job = self._jobs.get(ev["_key"])
            if job is None or job.stop:
                ev["Status"] = "canceled"
                ev["_pending"] = []
                continue
            still = []
            for placement in ev["_pending"]:
                node, _metric = self._try_node(job, job.group(placement[0]))
                if node is None:
                    still.append(placement)
                else:
                    self._create_alloc(ev, job, node, *placement)
            if len(still) != len(ev["_pending"]):
                ev["_pending"] = still
                queued: dict[str, int] = {}
                for p in still:
                    queued[p[0]] = queued.get(p[0], 0) + 1
                ev["QueuedAllocations"] = {
                    g["Name"]: queued.get(g["Name"], 0) for g in job.spec["TaskGroups"]
                }
                ev["ModifyIndex"] = self._next_index()
                ev["ModifyTime"] = _now()
                if not still:
                    ev["Status"] = "complete"
                    ev["StatusDescription"] = ""
        self._cond.notify_all()

    def _create_alloc(
        self,
        ev: dict,
        job: _Job,
        node: dict,
        group: str,
        index: int,
        previous: _Alloc | None,
        reschedule: bool,
    ) -> _Alloc:
        a = _Alloc(job, group, index, node, ev["ID"])
        a.create_index = a.modify_index = self._next_index()
        a.virtual = not self.run_children
        if previous is not None:
            a.previous_allocation = previous.id
            previous.next_allocation = a.id
            previous.modify_index = a.create_index
            if reschedule:
                a.reschedule_events = [
                    *previous.reschedule_events,
                    {
                        "RescheduleTime": _now(),
                        "PrevAllocID": previous.id,
                        "PrevNodeID": previous.node_id,
                        "Delay": previous.reschedule_delay,
                    },
                ]
        a.dir = os.path.join(self.workdir, "allocs", a.id)
        os.makedirs(os.path.join(a.dir, "alloc", "logs"), exist_ok=True)
        os.makedirs(os.path.join(a.dir, "alloc", "data"), exist_ok=True)
        for task_spec in a.group_spec()["Tasks"]:
            t = _Task(task_spec)
            for sub in ("local", "secrets", "tmp"):
                os.makedirs(os.path.join(a.dir, t.name, sub), exist_ok=True)
            for stream in ("stdout", "stderr"):
                open(self._log_path(a, t.name, stream), "ab").close()
            dp = task_spec.get("DispatchPayload") or {}
            if dp.get("File") and a.payload:
                target = os.path.join(a.dir, t.name, "local", dp["File"])
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "wb") as f:
                    f.write(a.payload)
            t.events.append(_event("Received", "Task received by client"))
            t.events.append(
                _event("Task Setup", "Building Task Directory", Message="Building Task Directory")
            )
            a.tasks[t.name] = t
        self._allocs[a.id] = a
        for t in a.tasks.values():
            self._launch(a, t)
        return a
