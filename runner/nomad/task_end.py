"""How a dispatched job's Nomad task ended, in words an operator can act on.

When a task dies before `run_job` marks its job started (the settings refuse to
load, the image cannot start, a template cannot be rendered) or after (killed for
memory, lost with its node), nothing in the database says why. Nomad knows: the
allocation's task events (`GET /v1/allocation/<id>`: TaskStates, with the exit
code, the signal, a driver's or a template's error) and the task's output
(`GET /v1/client/fs/logs/<alloc>?task=<t>&type=stderr&plain=true&origin=end&offset=<n>`).
`task_end` reads both and returns a WorkEnd: bounded, control characters removed,
secrets masked (common.secrets.redact_text).
"""

from __future__ import annotations

import re

from common.models import Job
from common.secrets import redact_text
from runner.dispatch.base import WorkEnd
from runner.nomad.client import NomadError, call

CHILD_MARK = "/dispatch-"
WORKER_PREFIX = "nomad:"  # common.version.worker_identity() in a Nomad task
STDERR_TAIL_BYTES = 4096
STDERR_TAIL_LINES = 20
STDERR_TAIL_CHARS = 1500
MESSAGE_CHARS = 500
_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b-\x1f\x7f]")
FAILING_EVENTS = ("Terminated", "Driver Failure", "Setup Failure", "Task hook failed", "Killing")


def is_child_id(dispatch_id: str) -> bool:
    return CHILD_MARK in dispatch_id


def own_allocation_id(job: Job) -> str:
    """The allocation that started the job (run_job's worker id), if any."""
    return job.worker_id[len(WORKER_PREFIX) :] if job.worker_id.startswith(WORKER_PREFIX) else ""


def clean(text: str, limit: int = MESSAGE_CHARS) -> str:
    """`text` without control characters or secrets, at most `limit` characters."""
    text = redact_text(_CONTROL.sub("", text)).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def task_end(job: Job) -> WorkEnd | None:
    """How the task of `job`'s dispatched child ended, or None when Nomad has no
    allocation of it that ended (or no longer knows the child)."""
    if not is_child_id(job.dispatch_id):
        return None
    stubs = call(
        f"list the allocations of {job.dispatch_id}",
        lambda n: n.job.get_allocations(job.dispatch_id),
    )
    own = own_allocation_id(job)
    mine = [a for a in stubs or [] if a.get("ID") == own] if own else []
    candidates = mine or list(stubs or [])
    if not candidates:
        return None
    stub = max(candidates, key=lambda a: (a.get("CreateIndex", 0), a.get("ModifyIndex", 0)))
    alloc = call(f"read allocation {stub['ID']}", lambda n: n.allocation.get_allocation(stub["ID"]))
    return describe_allocation(alloc)


def template_wait(allocations: list[dict]) -> str | None:
    """Why a placed task has not started, when Nomad's template runner waits for
    something that is missing (a Nomad Variable): Nomad waits for ever."""
    for alloc in allocations:
        if alloc.get("ClientStatus") != "pending":
            continue
        for name, state in (alloc.get("TaskStates") or {}).items():
            events = state.get("Events") or []
            last = events[-1] if events else {}
            message = last.get("DisplayMessage") or ""
            waiting = state.get("State") == "pending" and last.get("Type") == "Template"
            if waiting and message.startswith("Missing: "):
                return f"{clean(message)} ({_where(alloc, name)})"
    return None


def describe_allocation(alloc: dict) -> WorkEnd | None:
    """What the allocation's task events say about how it ended, with its stderr tail."""
    states = alloc.get("TaskStates") or {}
    if not states:
        if alloc.get("ClientStatus") == "lost":
            return WorkEnd(f"the allocation was lost with its node ({_where(alloc, '')})")
        return None
    name = next((t for t, s in states.items() if s.get("Failed")), next(iter(states)))
    events = states[name].get("Events") or []
    event = next((e for e in reversed(events) if _fails(e)), None)
    where = _where(alloc, name)
    if alloc.get("ClientStatus") == "lost":
        return WorkEnd(f"the allocation was lost with its node ({where})")
    if event is None:
        return None
    exit_code = event.get("ExitCode") if event["Type"] == "Terminated" else None
    description = f"{_describe(event)} ({where})"
    ran = any(e.get("Type") == "Started" for e in events)
    tail, note = stderr_tail(alloc["ID"], name) if ran else ("", "")
    return WorkEnd(description + note, exit_code, tail)


def _fails(event: dict) -> bool:
    kind = event.get("Type")
    if kind == "Killing":
        return bool(event.get("FailsTask"))
    return kind in FAILING_EVENTS


def _describe(event: dict) -> str:
    kind = event["Type"]
    details = event.get("Details") or {}
    if kind == "Terminated":
        text = f"exit code {event.get('ExitCode', '?')}"
        if event.get("Signal"):
            text += f", signal {event['Signal']}"
        if details.get("oom_killed") == "true":
            text += ", killed for lack of memory (OOM)"
        message = details.get("exit_message") or ""
        return text + (f": {clean(message)}" if message else "")
    shown = event.get("DisplayMessage") or ""
    if kind == "Driver Failure":
        return f"the task driver failed: {clean(event.get('DriverError') or shown)}"
    if kind == "Setup Failure":
        return f"the task's setup failed: {clean(event.get('SetupError') or shown)}"
    return clean(shown or kind)


def _where(alloc: dict, task: str) -> str:
    node = alloc.get("NodeName") or alloc.get("NodeID", "")[:8] or "?"
    task_part = f"task {task} " if task else ""
    return f"allocation {alloc.get('ID', '?')[:8]}, {task_part}on node {node}"


def stderr_tail(alloc_id: str, task: str) -> tuple[str, str]:
    """The last lines of the task's stderr (bounded, cleaned), or a note saying why
    it could not be read."""
    try:
        text = call(
            f"read the stderr of allocation {alloc_id}",
            lambda n: n.client.stream_logs.stream(
                alloc_id, task, "stderr", offset=STDERR_TAIL_BYTES, origin="end", plain=True
            ),
        )
    except NomadError as error:
        return "", f"; its stderr could not be read ({clean(str(error), 200)})"
    lines = (text or "").splitlines()
    if len(text or "") >= STDERR_TAIL_BYTES and lines:
        lines = lines[1:]  # the first line was cut
    tail = "\n".join(line.rstrip() for line in lines[-STDERR_TAIL_LINES:] if line.strip())
    tail = redact_text(_CONTROL.sub("", tail))
    if len(tail) > STDERR_TAIL_CHARS:
        tail = "…" + tail[-(STDERR_TAIL_CHARS - 1) :]
    return tail, ""
