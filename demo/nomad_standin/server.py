"""The stand-in's HTTP server, state, scheduler and task runner.

See the package docstring for what it emulates and what it leaves out.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import fnmatch
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from . import _spec
from ._spec import SEC, HTTPError, go_duration, go_quote, rfc3339

TERMINAL_EVAL = ("complete", "failed", "canceled")
TERMINAL_CLIENT = ("complete", "failed", "lost")
_LOST = "alloc is lost since its node is down"


def _now() -> int:
    return time.time_ns()


def _uuid() -> str:
    return str(uuid.uuid4())


def fake_node(
    name: str = "standin-node-1",
    *,
    datacenter: str = "dc1",
    cpu_mhz: int = 32000,
    cores: int = 16,
    memory_mb: int = 65536,
    disk_mb: int = 200_000,
    gpus: int = 0,
    gpu_vendor: str = "nvidia",
    gpu_type: str = "gpu",
    gpu_name: str = "Tesla T4",
    devices: list[dict] | None = None,
    drivers: Iterable[str] = ("docker", "exec", "raw_exec"),
    status: str = "ready",
    eligibility: str = "eligible",
    drain: bool = False,
    node_pool: str = "default",
    node_class: str = "",
    meta: dict[str, str] | None = None,
    reserved_cpu_mhz: int = 0,
    reserved_memory_mb: int = 0,
    node_id: str | None = None,
) -> dict:
    """A fake client node for ``NomadStandin(nodes=[...])``.

    ``gpus`` adds one device group of that many healthy instances; ``devices`` gives
    NodeResources.Devices in Nomad's own shape instead.
    """
    if devices is None:
        devices = []
        if gpus:
            devices.append(
                {
                    "Vendor": gpu_vendor,
                    "Type": gpu_type,
                    "Name": gpu_name,
                    "Instances": [
                        {
                            "ID": f"GPU-{_uuid()}",
                            "Healthy": True,
                            "HealthDescription": "",
                            "Locality": None,
                        }
                        for _ in range(gpus)
                    ],
                    "Attributes": None,
                }
            )
    return {
        "ID": node_id or _uuid(),
        "Name": name,
        "Datacenter": datacenter,
        "NodePool": node_pool,
        "NodeClass": node_class,
        "Status": status,
        "SchedulingEligibility": eligibility,
        "Drain": drain,
        "Drivers": list(drivers),
        "Meta": dict(meta or {}),
        "Attributes": {
            "os.name": "linux",
            "kernel.name": "linux",
            "cpu.arch": "amd64",
            "cpu.numcores": str(cores),
            "cpu.totalcompute": str(cpu_mhz),
            "memory.totalbytes": str(memory_mb * 1024 * 1024),
            "nomad.version": "1.9.7",
            "unique.hostname": name,
        },
        "NodeResources": {
            "Cpu": {
                "CpuShares": cpu_mhz,
                "TotalCpuCores": cores,
                "ReservableCpuCores": list(range(cores)),
            },
            "Memory": {"MemoryMB": memory_mb},
            "Disk": {"DiskMB": disk_mb},
            "Networks": None,
            "Devices": devices,
            "MinDynamicPort": 20000,
            "MaxDynamicPort": 32000,
        },
        "ReservedResources": {
            "Cpu": {"CpuShares": reserved_cpu_mhz, "ReservedCpuCores": None},
            "Memory": {"MemoryMB": reserved_memory_mb},
            "Disk": {"DiskMB": 0},
            "Networks": {"ReservedHostPorts": ""},
        },
    }


# --------------------------------------------------------------------------- state


class _Job:
    def __init__(self, spec: dict, payload: bytes | None):
        self.spec = spec
        self.ns: str = spec["Namespace"]
        self.id: str = spec["ID"]
        self.payload = payload
        self.parent_id = ""
        self.dispatched = False
        self.token = ""
        self.stop = bool(spec.get("Stop"))
        self.version = 0
        self.submit_time = _now()
        self.create_index = 0
        self.modify_index = 0
        self.job_modify_index = 0

    @property
    def key(self) -> tuple[str, str]:
        return (self.ns, self.id)

    @property
    def type(self) -> str:
        return self.spec["Type"]

    @property
    def is_parameterized(self) -> bool:
        return self.spec.get("ParameterizedJob") is not None and not self.dispatched

    @property
    def is_periodic(self) -> bool:
        return self.spec.get("Periodic") is not None

    def group(self, name: str) -> dict:
        return next(g for g in self.spec["TaskGroups"] if g["Name"] == name)


class _Task:
    def __init__(self, spec: dict):
        self.spec = spec
        self.name: str = spec["Name"]
        self.state = "pending"
        self.failed = False
        self.restarts = 0
        self.last_restart: int | None = None
        self.started_at: int | None = None
        self.finished_at: int | None = None
        self.events: list[dict] = []
        self.proc: subprocess.Popen | None = None
        self.generation = 0
        self.killing = False


class _Alloc:
    def __init__(self, job: _Job, group: str, index: int, node: dict, eval_id: str):
        self.id = _uuid()
        self.eval_id = eval_id
        self.ns = job.ns
        self.job_id = job.id
        self.job_create_index = job.create_index
        self.job_version = job.version
        self.job_type = job.type
        self.parent_id = job.parent_id
        self.payload = job.payload
        self.job_spec = copy.deepcopy(job.spec)
        self.group = group
        self.index = index
        self.node_id = node["ID"]
        self.node_name = node["Name"]
        self.desired_status = "run"
        self.desired_description = ""
        self.client_status = "pending"
        self.client_description = "No tasks have started"
        self.tasks: dict[str, _Task] = {}
        self.create_index = 0
        self.modify_index = 0
        self.create_time = _now()
        self.modify_time = self.create_time
        self.previous_allocation = ""
        self.next_allocation = ""
        self.followup_eval_id = ""
        self.reschedule_events: list[dict] = []
        self.reschedule_delay = 0
        self.frozen = False  # lost: the server hears nothing more from the client
        self.virtual = False  # run_children=False: no process, finished by a test
        self.dir = ""

    @property
    def name(self) -> str:
        return f"{self.job_id}.{self.group}[{self.index}]"

    @property
    def key(self) -> tuple[str, str]:
        return (self.ns, self.job_id)

    def group_spec(self) -> dict:
        return next(g for g in self.job_spec["TaskGroups"] if g["Name"] == self.group)

    def terminal(self) -> bool:
        return self.desired_status in ("stop", "evict") or self.client_status in TERMINAL_CLIENT

    def resources(self) -> tuple[int, int, list[tuple[str, int]]]:
        cpu = mem = 0
        devices: list[tuple[str, int]] = []
        for t in self.group_spec()["Tasks"]:
            r = t["Resources"]
            cpu += r["CPU"]
            mem += r["MemoryMB"]
            for d in r.get("Devices") or []:
                devices.append((d["Name"], d["Count"]))
        return cpu, mem, devices


def _event(kind: str, message: str = "", **fields: Any) -> dict:
    ev = {
        "Type": kind,
        "Time": _now(),
        "Message": "",
        "DisplayMessage": message,
        "Details": {},
        "FailsTask": False,
        "RestartReason": "",
        "SetupError": "",
        "DriverError": "",
        "ExitCode": 0,
        "Signal": 0,
        "KillTimeout": 0,
        "KillError": "",
        "KillReason": "",
        "StartDelay": 0,
        "DownloadError": "",
        "ValidationError": "",
        "DiskLimit": 0,
        "FailedSibling": "",
        "VaultError": "",
        "TaskSignalReason": "",
        "TaskSignal": "",
        "DriverMessage": "",
        "GenericSource": "",
    }
    ev.update(fields)
    return ev


def _client_status(tasks: Iterable[_Task]) -> tuple[str, str] | None:
    """client/allocrunner getClientStatus."""
    pending = running = dead = failed = False
    for t in tasks:
        if t.state == "running":
            running = True
        elif t.state == "pending":
            pending = True
        elif t.failed:
            failed = True
        else:
            dead = True
    if failed:
        return "failed", "Failed tasks"
    if running:
        return "running", "Tasks are running"
    if pending:
        return "pending", "No tasks have started"
    if dead:
        return "complete", "All tasks have completed"
    return None


def _device_matches(request: str, dev: dict) -> bool:
    parts = request.split("/")
    if len(parts) == 1:
        return dev["Type"] == parts[0]
    if len(parts) == 2:
        return dev["Vendor"] == parts[0] and dev["Type"] == parts[1]
    return (dev["Vendor"], dev["Type"], dev["Name"]) == tuple(parts[:3])


_INTERPOLATION = re.compile(r"\$\{([^}]+)\}")


def _interpolate(value: str, env: dict[str, str]) -> str:
    return _INTERPOLATION.sub(lambda m: env.get(m.group(1).strip(), m.group(0)), value)


def _clean_env_key(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", key)


# --------------------------------------------------------------------------- the stand-in


class NomadStandin:
    """A Nomad agent's HTTP API on 127.0.0.1, following reference/nomad-api.md."""

    def __init__(
        self,
        *,
        nodes: list[dict] | None = None,
        run_children: bool = True,
        command_rewriter: Callable[[list[str]], list[str]] | None = None,
        env_overrides: dict[str, str | None] | None = None,
        cwd: str | os.PathLike | None = None,
        strict_token: str | None = None,
        time_scale: float = 1.0,
        workdir: str | os.PathLike | None = None,
        region: str = "global",
        port: int = 0,
    ):
        self.nodes: list[dict] = [copy.deepcopy(n) for n in (nodes or [fake_node()])]
        self.run_children = run_children
        self.command_rewriter = command_rewriter
        self.env_overrides = dict(env_overrides or {})
        self.cwd = os.fspath(cwd) if cwd is not None else None
        self.strict_token = strict_token
        self.time_scale = time_scale
        self.region = region
        self._keep_workdir = workdir is not None
        self._workdir_arg = os.fspath(workdir) if workdir is not None else None
        self.workdir = ""
        self._port = port
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._index = 1
        self._jobs: dict[tuple[str, str], _Job] = {}
        self._evals: dict[str, dict] = {}
        self._allocs: dict[str, _Alloc] = {}
        self._requests: list[dict] = []
        self._fail_next: list[dict] = []
        self._held: set[str] = set()
        self._hold_all = False
        self._timers: list[threading.Timer] = []
        self._threads: list[threading.Thread] = []
        self._alive = False
        self._server: http.server.ThreadingHTTPServer | None = None
        self._server_thread: threading.Thread | None = None
        self._blackhole: socket.socket | None = None
        self.unreachable: bool | str = False
        self.internal_errors: list[str] = []

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> NomadStandin:
        if self._alive:
            return self
        if self._workdir_arg:
            os.makedirs(self._workdir_arg, exist_ok=True)
            self.workdir = self._workdir_arg
        else:
            self.workdir = tempfile.mkdtemp(prefix="nomad-standin-")
        self._alive = True
        self._serve()
        return self

    def stop(self) -> None:
        with self._lock:
            if not self._alive:
                return
            self._alive = False
            for t in self._timers:
                t.cancel()
            procs = [t.proc for a in self._allocs.values() for t in a.tasks.values() if t.proc]
            self._cond.notify_all()
        for p in procs:
            self._killpg(p, signal.SIGKILL)
        self._unserve()
        self._close_blackhole()
        for t in list(self._threads):
            t.join(timeout=5)
        if not self._keep_workdir and self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> NomadStandin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def _serve(self) -> None:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", self._port), _Handler)
        server.daemon_threads = True
        server.standin = self  # type: ignore[attr-defined]
        self._port = server.server_address[1]
        self._server = server
        self._server_thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=f"nomad-standin-{self._port}",
        )
        self._server_thread.start()

    def _unserve(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._server_thread is not None:
            self._server_thread.join(timeout=5)
            self._server_thread = None

    def _close_blackhole(self) -> None:
        if self._blackhole is not None:
            self._blackhole.close()
            self._blackhole = None

    # ----------------------------------------------------------------- fault injection

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
        self, job_id: str, *, replace: bool = False, namespace: str = "default"
    ) -> list[str]:
        """As when the node of the job's live allocations is lost: kill their
        processes (SIGKILL), mark them ClientStatus ``lost`` / DesiredStatus
        ``stop``. Task states keep their last reported value, as on a real server.
        With ``replace=True`` a replacement allocation is placed, as Nomad does for
        lost allocations even with reschedule attempts 0 (the job runs twice).
        Returns the lost allocation IDs."""
        with self._lock:
            allocs = [
                a
                for a in self._allocs.values()
                if a.key == (namespace, job_id) and not a.terminal()
            ]
            if not allocs:
                raise ValueError(f"job {job_id!r} has no live allocation")
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

    def finish_allocation(
        self,
        job_id: str,
        exit_code: int = 0,
        *,
        signal_number: int = 0,
        task: str | None = None,
        namespace: str = "default",
    ) -> str:
        """With ``run_children=False``: end the running task(s) of the job's live
        allocation as if the process exited with ``exit_code``. The restart and
        reschedule policies apply as for a real process. Returns the allocation ID."""
        with self._lock:
            allocs = [
                a
                for a in self._allocs.values()
                if a.key == (namespace, job_id) and not a.terminal()
            ]
            if not allocs:
                raise ValueError(f"job {job_id!r} has no live allocation")
            a = allocs[-1]
            if not a.virtual:
                raise ValueError("this allocation runs a real process; use run_children=False")
            tasks = [t for t in a.tasks.values() if t.state == "running"]
            if task is not None:
                tasks = [t for t in tasks if t.name == task]
            if not tasks:
                raise ValueError(f"allocation {a.id} has no running task {task or ''}")
            for t in tasks:
                self._task_exited(a, t, exit_code, signal_number)
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
        replace_lost: bool = False,
    ) -> dict:
        """Change a node (by ID or name). Status ``down`` loses its allocations (see
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

    # ----------------------------------------------------------------- inspection

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

    # ----------------------------------------------------------------- HTTP plumbing

    def _handle_http(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        parsed = urllib.parse.urlsplit(raw_path)
        path = urllib.parse.unquote(parsed.path)
        query = {
            k: v[0] for k, v in urllib.parse.parse_qs(parsed.query, keep_blank_values=True).items()
        }
        try:
            parsed_json = json.loads(body) if body else None
        except ValueError:
            parsed_json = None
        record = {
            "method": method,
            "path": path,
            "query": query,
            "json": parsed_json,
            "body": body.decode("utf-8", errors="replace"),
            "headers": dict(headers),
            "status": None,
        }
        with self._lock:
            self._requests.append(record)
            injected = None
            for i, f in enumerate(self._fail_next):
                if (f["method"] is None or f["method"] == method) and (
                    f["path"] is None or f["path"] in path
                ):
                    injected = self._fail_next.pop(i)
                    break
        if injected is not None:
            status, payload = injected["status"], HTTPError(injected["status"], injected["body"])
        else:
            try:
                self._check_token(path, headers)
                status, payload = self._route(method, path, query, body)
            except HTTPError as e:
                status, payload = e.code, e
            except Exception:
                tb = traceback.format_exc()
                with self._lock:
                    self.internal_errors.append(tb)
                print(tb, file=sys.stderr)
                status, payload = 500, HTTPError(500, "stand-in internal error:\n" + tb)
        with self._lock:
            record["status"] = status
            index = self._index
        extra = {
            "X-Nomad-Index": str(index),
            "X-Nomad-KnownLeader": "true",
            "X-Nomad-LastContact": "0",
        }
        return status, payload, extra

    def _check_token(self, path: str, headers: dict[str, str]) -> None:
        if self.strict_token is None or path.startswith("/v1/status/"):
            return
        lowered = {k.lower(): v for k, v in headers.items()}
        token = lowered.get("x-nomad-token")
        auth = lowered.get("authorization", "")
        if token is None and auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        if not token:
            raise HTTPError(403, "Permission denied")
        if token != self.strict_token:
            raise HTTPError(403, "ACL token not found")

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

    # ----------------------------------------------------------------- registering

    def _register(self, url_id: str | None, body: bytes, query: dict[str, str]) -> dict:
        req = _spec.decode(_spec.decode_body(body), _spec.JOB_REGISTER_REQUEST)
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
        spec = _spec.canonicalize_job(job, ns, region)
        payload = spec.pop("Payload", None)
        errors = _spec.validate_job(spec)
        if errors:
            raise HTTPError(500, _spec.multierror(errors))
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
        req = _spec.decode(_spec.decode_body(body), _spec.JOB_DISPATCH_REQUEST)
        if req.get("JobID") and req["JobID"] != parent_id:
            raise HTTPError(400, "Job ID does not match")
        ns = query.get("namespace") or req.get("Namespace") or "default"
        token = query.get("idempotency_token") or ""
        payload = req.get("Payload") or b""
        meta = req.get("Meta") or {}
        with self._lock:
            parent = self._jobs.get((ns, parent_id))
            if parent is None:
                raise HTTPError(500, "parameterized job not found")
            if not parent.is_parameterized:
                raise HTTPError(
                    500, f"Specified job {go_quote(parent_id)} is not a parameterized job"
                )
            if parent.stop:
                raise HTTPError(500, f"Specified job {go_quote(parent_id)} is stopped")
            error = _spec.validate_dispatch(parent.spec["ParameterizedJob"], payload, meta)
            if error:
                raise HTTPError(500, error)
            if token:
                for existing in sorted(self._jobs.values(), key=lambda j: j.id):
                    if (
                        existing.parent_id == parent.id
                        and existing.ns == ns
                        and existing.token == token
                    ):
                        return {
                            "DispatchedJobID": existing.id,
                            "EvalID": "",
                            "EvalCreateIndex": 0,
                            "JobCreateIndex": existing.create_index,
                            "Index": existing.modify_index,
                        }
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
                purge = _spec.parse_go_bool(query["purge"])
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

    # ----------------------------------------------------------------- scheduling

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

    def _node(self, ref: str) -> dict | None:
        return next((n for n in self.nodes if ref in (n["ID"], n["Name"])), None)

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

    # ----------------------------------------------------------------- tasks

    def _log_path(self, a: _Alloc, task: str, stream: str) -> str:
        return os.path.join(a.dir, "alloc", "logs", f"{task}.{stream}.0")

    def _launch(self, a: _Alloc, t: _Task) -> None:
        t.generation += 1
        t.killing = False
        if a.virtual:
            self._task_started(a, t)
            return
        thread = threading.Thread(
            target=self._task_thread,
            args=(a, t, t.generation),
            daemon=True,
            name=f"nomad-standin-task-{a.id[:8]}-{t.name}",
        )
        self._threads = [th for th in self._threads if th.is_alive()]
        self._threads.append(thread)
        thread.start()

    def _task_started(self, a: _Alloc, t: _Task) -> None:
        t.state = "running"
        t.started_at = _now()
        t.events.append(_event("Started", "Task started by client"))
        self._alloc_updated(a)

    def _task_environment(self, a: _Alloc, t: _Task) -> tuple[list[str], dict[str, str], str]:
        job = a.job_spec
        group = a.group_spec()
        node = self._node(a.node_id) or {}
        meta: dict[str, str] = {}
        meta.update(job.get("Meta") or {})
        meta.update(group.get("Meta") or {})
        meta.update(t.spec.get("Meta") or {})
        p = job.get("ParameterizedJob") or {}
        for key in [*(p.get("MetaRequired") or []), *(p.get("MetaOptional") or [])]:
            meta.setdefault(key, "")
        r = t.spec["Resources"]
        task_dir = os.path.join(a.dir, t.name)
        nomad: dict[str, str] = {
            "NOMAD_ALLOC_DIR": os.path.join(a.dir, "alloc"),
            "NOMAD_TASK_DIR": os.path.join(task_dir, "local"),
            "NOMAD_SECRETS_DIR": os.path.join(task_dir, "secrets"),
            "NOMAD_MEMORY_LIMIT": str(r["MemoryMB"]),
            "NOMAD_MEMORY_MAX_LIMIT": str(r.get("MemoryMaxMB") or r["MemoryMB"]),
            "NOMAD_CPU_LIMIT": str(r["CPU"]),
            "NOMAD_ALLOC_ID": a.id,
            "NOMAD_SHORT_ALLOC_ID": a.id[:8],
            "NOMAD_ALLOC_NAME": a.name,
            "NOMAD_ALLOC_INDEX": str(a.index),
            "NOMAD_TASK_NAME": t.name,
            "NOMAD_GROUP_NAME": a.group,
            "NOMAD_JOB_ID": a.job_id,
            "NOMAD_JOB_NAME": job["Name"],
            "NOMAD_JOB_PARENT_ID": a.parent_id,
            "NOMAD_DC": node.get("Datacenter", ""),
            "NOMAD_NAMESPACE": a.ns,
            "NOMAD_REGION": job.get("Region", ""),
        }
        for k, v in meta.items():
            nomad[f"NOMAD_META_{k.upper()}"] = v
            nomad[f"NOMAD_META_{k}"] = v
        attrs = {
            "node.unique.id": node.get("ID", ""),
            "node.unique.name": node.get("Name", ""),
            "node.datacenter": node.get("Datacenter", ""),
            "node.region": self.region,
            "node.class": node.get("NodeClass", ""),
            "node.pool": node.get("NodePool", ""),
        }
        attrs.update({f"attr.{k}": v for k, v in (node.get("Attributes") or {}).items()})
        attrs.update({f"meta.{k}": v for k, v in (node.get("Meta") or {}).items()})
        base = {**nomad, **attrs}
        task_env = {k: _interpolate(str(v), base) for k, v in (t.spec.get("Env") or {}).items()}
        full = {**base, **task_env}
        config = t.spec.get("Config") or {}
        argv: list[str] = []
        if config.get("command"):
            argv.append(_interpolate(str(config["command"]), full))
        argv.extend(_interpolate(str(x), full) for x in config.get("args") or [])
        if self.command_rewriter is not None:
            argv = list(self.command_rewriter(list(argv)))
        env = dict(os.environ)
        env.update({_clean_env_key(k): v for k, v in nomad.items()})
        env.update({_clean_env_key(k): v for k, v in task_env.items()})
        for k, v in self.env_overrides.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        return argv, env, self.cwd or task_dir

    def _task_thread(self, a: _Alloc, t: _Task, gen: int) -> None:
        with self._lock:
            if not self._alive or a.frozen or t.generation != gen or a.desired_status != "run":
                return
            try:
                argv, env, cwd = self._task_environment(a, t)
            except Exception as e:
                self._task_exited(a, t, 0, 0, driver_error=f"stand-in: {e!r}")
                return
            if not argv:
                self._task_exited(
                    a,
                    t,
                    0,
                    0,
                    driver_error="stand-in: the task has no Config.command to run",
                )
                return
            out_path = self._log_path(a, t.name, "stdout")
            err_path = self._log_path(a, t.name, "stderr")
        try:
            with open(out_path, "ab") as out, open(err_path, "ab") as err:
                proc = subprocess.Popen(
                    argv,
                    env=env,
                    cwd=cwd,
                    stdout=out,
                    stderr=err,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
        except OSError as e:
            with self._lock:
                if t.generation == gen:
                    self._task_exited(
                        a,
                        t,
                        0,
                        0,
                        driver_error=f"failed to launch command with executor: {e}",
                    )
            return
        with self._lock:
            t.proc = proc
            if not self._alive or a.frozen or t.generation != gen:
                self._killpg(proc, signal.SIGKILL)
            elif a.desired_status != "run":
                self._killpg(proc, self._kill_signal(t))
            else:
                self._task_started(a, t)
        rc = proc.wait()
        exit_code, sig = (128 - rc, -rc) if rc < 0 else (rc, 0)
        with self._lock:
            if t.proc is proc:
                t.proc = None
            if t.generation != gen or not self._alive:
                return
            self._task_exited(a, t, exit_code, sig)

    def _killpg(self, proc: subprocess.Popen, sig: int) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)

    def _kill_signal(self, t: _Task) -> int:
        name = t.spec.get("KillSignal") or ("SIGTERM" if t.spec["Driver"] == "docker" else "SIGINT")
        return getattr(signal, name, signal.SIGTERM)

    def _timer(self, delay_ns: int, fn: Callable[..., None], *args: Any) -> None:
        seconds = max(0.0, delay_ns / SEC * self.time_scale)

        def run() -> None:
            with self._lock:
                if self._alive:
                    fn(*args)

        timer = threading.Timer(seconds, run)
        timer.daemon = True
        self._timers = [x for x in self._timers if x.is_alive()]
        self._timers.append(timer)
        timer.start()

    def _task_exited(
        self,
        a: _Alloc,
        t: _Task,
        exit_code: int,
        sig: int,
        *,
        driver_error: str | None = None,
    ) -> None:
        if a.frozen or t.state == "dead":
            return
        now = _now()
        if driver_error is None:
            display = f"Exit Code: {exit_code}" + (f", Signal: {sig}" if sig else "")
            t.events.append(
                _event(
                    "Terminated",
                    display,
                    ExitCode=exit_code,
                    Signal=sig,
                    Details={
                        "exit_code": str(exit_code),
                        "signal": str(sig),
                        "oom_killed": "false",
                        "exit_message": "",
                    },
                )
            )
        else:
            t.events.append(
                _event(
                    "Driver Failure",
                    driver_error,
                    DriverError=driver_error,
                    Details={"driver_error": driver_error},
                )
            )
        if a.desired_status != "run" or t.killing:
            t.events.append(_event("Killed", "Task successfully killed"))
            t.state, t.failed, t.finished_at = "dead", False, now
        elif exit_code == 0 and sig == 0 and driver_error is None:
            t.state, t.finished_at = "dead", now
        else:
            self._restart_or_fail(a, t)
        self._alloc_updated(a)

    def _restart_or_fail(self, a: _Alloc, t: _Task) -> None:
        policy = t.spec["RestartPolicy"]
        if t.restarts < policy["Attempts"]:
            delay = policy["Delay"]
        elif policy["Mode"] == "delay":
            delay = policy["Interval"]
        else:
            message = (
                f"Exceeded allowed attempts {policy['Attempts']} in interval "
                f"{go_duration(policy['Interval'])} and mode is {go_quote(policy['Mode'])}"
            )
            t.events.append(
                _event(
                    "Not Restarting",
                    message,
                    FailsTask=True,
                    Details={"fails_task": "true", "restart_reason": message},
                )
            )
            t.state, t.failed, t.finished_at = "dead", True, _now()
            return
        t.events.append(
            _event(
                "Restarting",
                f"Task restarting in {go_duration(delay)}",
                StartDelay=delay,
                RestartReason="Restart within policy",
                Details={"start_delay": str(delay), "restart_reason": "Restart within policy"},
            )
        )
        t.state = "pending"
        t.restarts += 1
        t.last_restart = _now()
        t.generation += 1
        gen = t.generation
        self._timer(delay, self._restart_task, a, t, gen)

    def _restart_task(self, a: _Alloc, t: _Task, gen: int) -> None:
        if a.frozen or a.desired_status != "run" or t.generation != gen or t.state != "pending":
            return
        self._launch(a, t)

    def _alloc_updated(self, a: _Alloc) -> None:
        was_terminal = a.terminal()
        before = a.client_status
        if not a.frozen:
            derived = _client_status(a.tasks.values())
            if derived is not None:
                a.client_status, a.client_description = derived
        a.modify_index = self._next_index()
        a.modify_time = _now()
        if a.client_status == "failed" and a.desired_status == "run":
            for other in a.tasks.values():
                if other.state != "dead" and not other.killing:
                    failed = next(x.name for x in a.tasks.values() if x.failed)
                    other.events.append(
                        _event(
                            "Sibling Task Failed",
                            f"Task's sibling {go_quote(failed)} failed",
                            FailedSibling=failed,
                        )
                    )
                    self._kill_task(a, other)
        if before != "failed" and a.client_status == "failed" and a.desired_status == "run":
            self._maybe_reschedule(a)
        if not was_terminal and a.terminal():
            self._unblock()
        self._cond.notify_all()

    def _kill_task(self, a: _Alloc, t: _Task) -> None:
        if t.state == "dead":
            return
        t.killing = True
        timeout = t.spec["KillTimeout"]
        signame = signal.Signals(self._kill_signal(t)).name
        t.events.append(
            _event(
                "Killing",
                f"Sent interrupt. Waiting {go_duration(timeout)} before force killing",
                KillTimeout=timeout,
                Details={"kill_timeout": go_duration(timeout)},
                Message=signame,
            )
        )
        proc = t.proc
        if proc is not None:
            self._killpg(proc, self._kill_signal(t))
            self._timer(timeout, lambda: self._killpg(proc, signal.SIGKILL))
            return
        # not started, waiting for a restart, or a task without a process
        t.generation += 1
        t.events.append(_event("Killed", "Task successfully killed"))
        t.state, t.failed, t.finished_at = "dead", False, _now()

    def _stop_alloc(self, a: _Alloc, description: str) -> None:
        a.desired_status = "stop"
        a.desired_description = description
        for t in a.tasks.values():
            self._kill_task(a, t)
        self._alloc_updated(a)

    def _lose(self, a: _Alloc) -> None:
        a.frozen = True
        a.client_status = "lost"
        a.client_description = _LOST
        a.desired_status = "stop"
        a.desired_description = _LOST
        a.modify_index = self._next_index()
        a.modify_time = _now()
        for t in a.tasks.values():
            t.generation += 1
            if t.proc is not None:
                self._killpg(t.proc, signal.SIGKILL)

    def _maybe_reschedule(self, a: _Alloc) -> None:
        job = self._jobs.get(a.key)
        if job is None or job.stop or job.create_index != a.job_create_index:
            return
        policy = job.group(a.group).get("ReschedulePolicy")
        if not policy or not (policy["Unlimited"] or policy["Attempts"] > 0):
            return
        now = _now()
        recent = [
            e
            for e in a.reschedule_events
            if policy["Unlimited"] or now - e["RescheduleTime"] < policy["Interval"]
        ]
        if not policy["Unlimited"] and len(recent) >= policy["Attempts"]:
            return
        delay = policy["Delay"]
        n = len(a.reschedule_events)
        if policy["DelayFunction"] == "exponential":
            delay = policy["Delay"] * (2**n)
        elif policy["DelayFunction"] == "fibonacci":
            x, y = policy["Delay"], policy["Delay"]
            for _ in range(n):
                x, y = y, x + y
            delay = x
        if policy["DelayFunction"] != "constant" and policy["MaxDelay"]:
            delay = min(delay, policy["MaxDelay"])
        a.reschedule_delay = delay
        ev = self._new_eval(job, "alloc-failure", status="pending")
        ev["WaitUntil"] = rfc3339(now + delay)
        ev["StatusDescription"] = "created for delayed rescheduling"
        a.followup_eval_id = ev["ID"]
        self._timer(delay, self._reschedule, ev["ID"], a.id)

    def _reschedule(self, eval_id: str, alloc_id: str) -> None:
        ev = self._evals.get(eval_id)
        a = self._allocs.get(alloc_id)
        if ev is None or ev["Status"] != "pending":
            return
        job = self._jobs.get(ev["_key"])
        if job is None or job.stop or a is None:
            ev["Status"] = "canceled"
            self._cond.notify_all()
            return
        self._place(ev, job, [(a.group, a.index, a, True)])
        self._cond.notify_all()

    # ----------------------------------------------------------------- answers

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
                with_meta = _spec.parse_go_bool(query["meta"])
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

    def _node_out(self, n: dict, *, resources: bool, full: bool = False) -> dict:
        drivers = {
            d: {
                "Attributes": None,
                "Detected": True,
                "Healthy": True,
                "HealthDescription": "Healthy",
                "UpdateTime": rfc3339(_now()),
            }
            for d in n["Drivers"]
        }
        out = {
            "Address": "127.0.0.1",
            "ID": n["ID"],
            "Attributes": None,
            "Datacenter": n["Datacenter"],
            "Name": n["Name"],
            "NodeClass": n["NodeClass"],
            "NodePool": n["NodePool"],
            "Version": n["Attributes"].get("nomad.version", ""),
            "Drain": n["Drain"],
            "SchedulingEligibility": n["SchedulingEligibility"],
            "Status": n["Status"],
            "StatusDescription": "",
            "Drivers": drivers,
            "HostVolumes": None,
            "HostNetworks": None,
            "CSIControllerPlugins": None,
            "CSINodePlugins": None,
            "LastDrain": None,
            "CreateIndex": 1,
            "ModifyIndex": 1,
        }
        if resources:
            out["NodeResources"] = copy.deepcopy(n["NodeResources"])
            out["ReservedResources"] = copy.deepcopy(n["ReservedResources"])
        if full:
            out["Attributes"] = dict(n["Attributes"])
            out["Meta"] = dict(n["Meta"])
        return out

    def _list_nodes(self, query: dict[str, str]) -> list[dict]:
        flags = {}
        for name in ("resources", "os"):
            value = query.get(name)
            if value:
                try:
                    flags[name] = _spec.parse_go_bool(value)
                except ValueError as e:
                    raise HTTPError(
                        500, f'Failed to parse value of "{name}" ({value}) as a bool: {e}'
                    ) from None
        prefix = query.get("prefix", "")
        with self._lock:
            out = []
            for n in self.nodes:
                if not n["ID"].startswith(prefix):
                    continue
                stub = self._node_out(n, resources=flags.get("resources", False))
                if flags.get("os"):
                    stub["Attributes"] = {"os.name": n["Attributes"].get("os.name", "")}
                out.append(stub)
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
                    flags[name] = _spec.parse_go_bool(value)
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


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = "NomadStandin/1.0"
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        standin: NomadStandin = self.server.standin  # type: ignore[attr-defined]
        status, payload, extra = standin._handle_http(
            method, self.path, dict(self.headers.items()), body
        )
        if isinstance(payload, HTTPError):
            data = payload.message.encode()
            content_type = "text/plain; charset=utf-8"
        elif isinstance(payload, _Raw):
            content_type = payload.content_type
            if not isinstance(payload.body, bytes):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                for k, v in extra.items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    for chunk in payload.body:
                        self.wfile.write(chunk)
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass
                return
            data = payload.body
        else:
            data = json.dumps(payload).encode()
            content_type = "application/json"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra.items():
            self.send_header(k, v)
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(data)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")
