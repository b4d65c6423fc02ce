"""Registering the refinery's Nomad jobs and their variables idempotently, and
reading their state.

`register_all` first writes each job's Nomad Variable (its tasks' secrets, at
`nomad/jobs/<job>`), so that no task waits for one, then compares each generated
job with the one Nomad has: a job Nomad does not have is created, one that differs
is registered again (updated), one that matches is left alone (unchanged). Nomad
fills in defaults for every field a specification leaves out, so the comparison
asks whether Nomad's job says everything the specification says; the free-form
maps (`Env`, `Meta`, `Config`) must match exactly, so that a removed variable
counts as a change. A variable is written when its items differ; what is reported
names the items that changed, never their values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from runner.nomad.client import NomadError, call
from runner.nomad.specs import Specs
from runner.nomad.worker_classes import PARENT_PREFIX

EXACT_MAPS = frozenset({"Env", "Meta", "Config"})


def differences(wanted: Any, actual: Any, path: str = "") -> list[str]:
    """Where Nomad's `actual` job does not say what `wanted` says (dotted paths)."""
    if isinstance(wanted, dict):
        if not isinstance(actual, dict):
            return [path or "."]
        found = []
        for key, value in wanted.items():
            if value is None:
                continue
            where = f"{path}.{key}" if path else key
            if key not in actual:
                found.append(where)
            elif key in EXACT_MAPS and isinstance(value, dict):
                if value != (actual[key] or {}):
                    found.append(where)
            else:
                found.extend(differences(value, actual[key], where))
        return found
    if isinstance(wanted, list):
        if not isinstance(actual, list) or len(actual) != len(wanted):
            return [path]
        found = []
        for index, (w, a) in enumerate(zip(wanted, actual, strict=True)):
            found.extend(differences(w, a, f"{path}[{index}]"))
        return found
    return [] if wanted == actual else [path]


@dataclass
class Registration:
    job_id: str  # or the variable's path
    outcome: str  # "created", "updated", "unchanged"
    changed: list[str] = field(default_factory=list)
    what: str = "job"  # or "variable"


def registered_job(job_id: str) -> dict | None:
    """Nomad's job, or None when it has none of that ID."""
    try:
        return call(f"read job {job_id}", lambda n: n.job.get_job(job_id))
    except NomadError as error:
        if error.not_found:
            return None
        raise


def register(job: dict, dry_run: bool = False) -> Registration:
    """Register `job` (Nomad's API `Job` object) unless Nomad has it already."""
    job_id = job["ID"]
    current = registered_job(job_id)
    if current is None:
        outcome, changed = "created", []
    else:
        changed = differences(job, current)
        if current.get("Stop"):
            changed.append("Stop (the job was stopped)")
        outcome = "updated" if changed else "unchanged"
    if outcome != "unchanged" and not dry_run:
        call(f"register job {job_id}", lambda n: n.jobs.register_job({"Job": job}))
    return Registration(job_id, outcome, changed)


def _namespace() -> str | None:
    # python-nomad sends no namespace for /v1/var: say it, or it is "default".
    return settings.REFINERY_NOMAD_NAMESPACE or None


def registered_variable(path: str) -> dict[str, str] | None:
    """The items of Nomad's variable at `path`, or None when it has none."""
    try:
        found = call(
            f"read variable {path}",
            lambda n: n.variable.get_variable(path, namespace=_namespace()),
        )
    except NomadError as error:
        if error.not_found:
            return None
        raise
    return dict(found.get("Items") or {})


def register_variable(path: str, items: dict[str, str], dry_run: bool = False) -> Registration:
    """Write the variable at `path` unless Nomad has it with these items already."""
    current = registered_variable(path)
    if current is None:
        outcome, changed = "created", []
    else:
        changed = sorted(k for k in set(items) | set(current) if items.get(k) != current.get(k))
        outcome = "updated" if changed else "unchanged"
    if outcome != "unchanged" and not dry_run:
        call(
            f"write variable {path}",
            lambda n: n.variable.create_variable(path, {"Items": items}, namespace=_namespace()),
        )
    return Registration(path, outcome, changed, what="variable")


def register_all(specs: Specs, dry_run: bool = False) -> list[Registration]:
    """Every variable, then every job."""
    variables = [
        register_variable(path, items, dry_run) for path, items in sorted(specs.variables.items())
    ]
    return variables + [register(job, dry_run) for job in specs.jobs]


def obsolete_jobs(generated: list[dict]) -> list[str]:
    """REFINERY_* jobs Nomad has that are no longer generated (dispatched children
    are not counted)."""
    wanted = {job["ID"] for job in generated}
    stubs = call("list the REFINERY_ jobs", lambda n: n.jobs.get_jobs(prefix=PARENT_PREFIX))
    return sorted(
        stub["ID"]
        for stub in stubs
        if not stub.get("ParentID") and stub["ID"] not in wanted and not stub.get("Stop")
        and stub.get("Status") != "dead"
    )  # fmt: skip


# --- status ----------------------------------------------------------------------------


@dataclass
class ParentState:
    job_id: str
    registered: bool
    pending: int = 0
    running: int = 0
    dead: int = 0


def parent_states(parent_ids: list[str]) -> list[ParentState]:
    """Each parameterized job's children, from its summary (Children counts)."""
    states = []
    for job_id in parent_ids:
        try:
            summary = call(
                f"read the summary of {job_id}", lambda n, j=job_id: n.job.get_summary(j)
            )
        except NomadError as error:
            if error.not_found:
                states.append(ParentState(job_id, registered=False))
                continue
            raise
        children = summary.get("Children") or {}
        states.append(
            ParentState(
                job_id,
                registered=True,
                pending=int(children.get("Pending") or 0),
                running=int(children.get("Running") or 0),
                dead=int(children.get("Dead") or 0),
            )
        )
    return states


@dataclass
class NodeState:
    name: str
    status: str
    eligible: bool
    drain: bool
    datacenter: str
    node_class: str
    cpu_mhz: int
    memory_mb: int
    gpus: int


def node_states() -> list[NodeState]:
    """Every client node and what it offers jobs (its resources less what is reserved)."""
    nodes = call("list the nodes", lambda n: n.nodes.get_nodes(resources=True))
    states = []
    for node in nodes:
        resources = node.get("NodeResources") or {}
        reserved = node.get("ReservedResources") or {}
        cpu = (resources.get("Cpu") or {}).get("CpuShares", 0) - (reserved.get("Cpu") or {}).get(
            "CpuShares", 0
        )
        memory = (resources.get("Memory") or {}).get("MemoryMB", 0) - (
            reserved.get("Memory") or {}
        ).get("MemoryMB", 0)
        gpus = sum(
            sum(1 for instance in device.get("Instances") or [] if instance.get("Healthy"))
            for device in resources.get("Devices") or []
            if device.get("Type") == "gpu"
        )
        states.append(
            NodeState(
                name=node.get("Name", node.get("ID", "?")),
                status=node.get("Status", "?"),
                eligible=node.get("SchedulingEligibility") == "eligible",
                drain=bool(node.get("Drain")),
                datacenter=node.get("Datacenter", ""),
                node_class=node.get("NodeClass", ""),
                cpu_mhz=int(cpu),
                memory_mb=int(memory),
                gpus=gpus,
            )
        )
    return states
