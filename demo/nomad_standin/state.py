"""What the stand-in keeps: jobs, allocations and their tasks, task events, and the
attributes :class:`~.server.NomadStandin` shares with its parts.
"""

from __future__ import annotations

import copy
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

TERMINAL_EVAL = ("complete", "failed", "canceled")
TERMINAL_CLIENT = ("complete", "failed", "lost")
_LOST = "alloc is lost since its node is down"


def _now() -> int:
    return time.time_ns()


def _uuid() -> str:
    return str(uuid.uuid4())


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
        self.waiting_for_variable = False  # a template's nomadVar does not exist yet


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


class StandinState:
    """What :class:`~.server.NomadStandin` holds, which its parts (the classes of the
    other modules, which it inherits from) read and change under ``_lock``.

    Annotations only: ``NomadStandin.__init__`` sets them.
    """

    nodes: list[dict]
    run_children: bool
    command_rewriter: Callable[[list[str]], list[str]] | None
    env_overrides: dict[str, str | None]
    host_env: dict[str, str] | None
    cwd: str | None
    strict_token: str | None
    time_scale: float
    region: str
    workdir: str
    unreachable: bool | str
    internal_errors: list[str]
    _port: int
    _lock: threading.RLock
    _cond: threading.Condition
    _index: int
    _jobs: dict[tuple[str, str], _Job]
    _evals: dict[str, dict]
    _allocs: dict[str, _Alloc]
    _variables: dict[tuple[str, str], dict]
    _identities: dict[str, dict]
    _requests: list[dict]
    _fail_next: list[dict]
    _held: set[str]
    _hold_all: bool
    _timers: list[threading.Timer]
    _threads: list[threading.Thread]
    _alive: bool
    _blackhole: socket.socket | None
