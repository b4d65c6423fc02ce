"""The server's validation of a job (Job.Validate) and of a dispatch request
(validateDispatchRequest), with Nomad's error texts.
"""

from __future__ import annotations

import re

from .go_text import SEC, go_duration, go_list, go_quote, multierror

DISPATCH_PAYLOAD_SIZE_LIMIT = 16 * 1024

JOB_TYPES = ("service", "batch", "system", "sysbatch")
PAYLOAD_MODES = ("optional", "required", "forbidden")


def validate_job(j: dict) -> list[str]:
    """structs.Job.Validate: the top-level list of errors (empty if valid)."""
    errs: list[str] = []
    if not j["ID"]:
        errs.append("Missing job ID")
    elif " " in j["ID"]:
        errs.append("Job ID contains a space")
    if not j["Name"]:
        errs.append("Missing job name")
    if not j["Namespace"]:
        errs.append("Job must be in a namespace")
    if j["Type"] == "":
        errs.append("Missing job type")
    elif j["Type"] not in JOB_TYPES:
        errs.append(f"Invalid job type: {go_quote(j['Type'])}")
    if not 1 <= j["Priority"] <= 100:
        errs.append("Job priority must be between [1, 100]")
    if not j["TaskGroups"]:
        errs.append("Missing job task groups")
    seen: dict[str, int] = {}
    for idx, tg in enumerate(j["TaskGroups"]):
        if not tg["Name"]:
            errs.append(f"Job task group {idx + 1} missing name")
        elif tg["Name"] in seen:
            first = seen[tg["Name"]] + 1
            errs.append(f"Job task group {idx + 1} redefines '{tg['Name']}' from group {first}")
        else:
            seen[tg["Name"]] = idx
    for tg in j["TaskGroups"]:
        group_errors = _validate_group(tg, j["Type"])
        if group_errors:
            errs.append(f"Task group {tg['Name']} validation failed: {multierror(group_errors)}")
    p = j.get("ParameterizedJob")
    if p is not None and not j.get("Dispatched"):
        if j["Type"] not in ("batch", "sysbatch"):
            errs.append('Parameterized job can only be used with "batch" scheduler')
        if p["Payload"] not in PAYLOAD_MODES:
            errs.append(f"Unknown payload requirement: {go_quote(p['Payload'])}")
        both = sorted(set(p.get("MetaRequired") or []) & set(p.get("MetaOptional") or []))
        if both:
            errs.append(
                "Required and optional meta keys should be disjoint. "
                f"Following keys exist in both: {go_list(both)}"
            )
    return errs


def _validate_restart(r: dict) -> list[str]:
    errs = []
    if r["Mode"] not in ("delay", "fail"):
        errs.append(f"Unsupported restart mode: {go_quote(r['Mode'])}")
    if r["Attempts"] == 0 and r["Mode"] != "fail":
        errs.append(f"Restart policy {go_quote(r['Mode'])} with 0 attempts is ambiguous")
    if r["Interval"] < 5 * SEC:
        errs.append(f"Interval can not be less than 5s (got {go_duration(r['Interval'])})")
    if r["Attempts"] * r["Delay"] > r["Interval"]:
        errs.append(
            f"Nomad can't restart the TaskGroup {r['Attempts']} times in an interval of "
            f"{go_duration(r['Interval'])} with a delay of {go_duration(r['Delay'])}"
        )
    return errs


def _validate_reschedule(r: dict) -> list[str]:
    if not (r.get("Unlimited") or r.get("Attempts", 0) > 0):
        return []
    errs = []
    if r["Attempts"] > 0:
        if r["Interval"] <= 0:
            errs.append("Interval must be a non zero value if Attempts > 0")
        if r["Unlimited"]:
            errs.append(
                f"Reschedule Policy with Attempts = {r['Attempts']}, Interval = "
                f"{go_duration(r['Interval'])}, and Unlimited = true is ambiguous"
            )
            errs.append("If Attempts >0, Unlimited cannot also be set to true")
    if r["Delay"] < 5 * SEC:
        errs.append(f"Delay cannot be less than 5s (got {go_duration(r['Delay'])})")
    if r["DelayFunction"] not in ("constant", "exponential", "fibonacci"):
        errs.append(
            f"Invalid delay function {go_quote(r['DelayFunction'])}, must be one of "
            '["constant" "exponential" "fibonacci"]'
        )
    elif r["DelayFunction"] != "constant" and r["MaxDelay"] < 5 * SEC:
        errs.append(f"Max Delay cannot be less than 5s (got {go_duration(r['MaxDelay'])})")
    if not r["Unlimited"] and r["Interval"] < 5 * SEC:
        errs.append(f"Interval cannot be less than 5s (got {go_duration(r['Interval'])})")
    return errs


def _validate_group(tg: dict, job_type: str) -> list[str]:
    errs: list[str] = []
    if not tg["Name"]:
        errs.append("Missing task group name")
    if tg["Count"] < 0:
        errs.append("Task group count can't be negative")
    if not tg["Tasks"]:
        errs.append("Missing tasks for task group")
    restart_errors = _validate_restart(tg["RestartPolicy"])
    if restart_errors:
        errs.append(multierror(restart_errors))
    if job_type == "system":
        if tg["ReschedulePolicy"] is not None:
            errs.append("System jobs should not have a reschedule policy")
    elif tg["ReschedulePolicy"] is not None:
        reschedule_errors = _validate_reschedule(tg["ReschedulePolicy"])
        if reschedule_errors:
            errs.append(multierror(reschedule_errors))
    elif job_type != "sysbatch":
        errs.append(f"Task Group {tg['Name']} should have a reschedule policy")
    seen: dict[str, int] = {}
    for idx, task in enumerate(tg["Tasks"]):
        if not task["Name"]:
            errs.append(f"Task {idx + 1} missing name")
        elif task["Name"] in seen:
            errs.append(
                f"Task {idx + 1} redefines '{task['Name']}' from task {seen[task['Name']] + 1}"
            )
        else:
            seen[task["Name"]] = idx
    if sum(1 for t in tg["Tasks"] if t["Leader"]) > 1:
        errs.append("Only one task may be marked as leader")
    for task in tg["Tasks"]:
        task_errors = _validate_task(task)
        if task_errors:
            errs.append(f"Task {task['Name']} validation failed: {multierror(task_errors)}")
    return errs


def _validate_task(t: dict) -> list[str]:
    errs: list[str] = []
    if not t["Name"]:
        errs.append("Missing task name")
    if re.search(r"[/\\]", t["Name"]):
        errs.append("Task name cannot include slashes")
    if not t["Driver"]:
        errs.append("Missing task driver")
    if t["KillTimeout"] < 0:
        errs.append("KillTimeout must be a positive value")
    r = t["Resources"]
    minimums = []
    if r["CPU"] < 1 and r["Cores"] == 0:
        minimums.append(f"minimum CPU value is 1; got {r['CPU']}")
    if r["MemoryMB"] < 10:
        minimums.append(f"minimum MemoryMB value is 10; got {r['MemoryMB']}")
    if minimums:
        errs.append(multierror(minimums))
    if r["DiskMB"] > 0:
        errs.append(
            "Task can't ask for disk resources, they have to be specified at the task group level."
        )
    for d in r.get("Devices") or []:
        if not d.get("Name"):
            errs.append(
                "device name must be given as one of the following: type, vendor/type, "
                "or vendor/type/name"
            )
    return errs


def validate_dispatch(parameterized: dict, payload: bytes, meta: dict[str, str]) -> str | None:
    """nomad/job_endpoint.go validateDispatchRequest: the first error, or None."""
    has_payload = len(payload) != 0
    mode = parameterized.get("Payload")
    if mode == "required" and not has_payload:
        return "Payload is not provided but required by parameterized job"
    if mode == "forbidden" and has_payload:
        return "Payload provided but forbidden by parameterized job"
    if len(payload) > DISPATCH_PAYLOAD_SIZE_LIMIT:
        return f"Payload exceeds maximum size; {len(payload)} > {DISPATCH_PAYLOAD_SIZE_LIMIT}"
    required = parameterized.get("MetaRequired") or []
    optional = parameterized.get("MetaOptional") or []
    unpermitted = sorted(k for k in meta if k not in required and k not in optional)
    if unpermitted:
        return f"Dispatch request included unpermitted metadata keys: {go_list(unpermitted)}"
    missing = sorted({k for k in required if k not in meta})
    if missing:
        return f"Dispatch did not provide required meta keys: {go_list(missing)}"
    return None
