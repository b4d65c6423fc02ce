"""The server's validation of a job (Job.Validate) and of a dispatch request
(validateDispatchRequest), with Nomad's error texts.
"""

from __future__ import annotations

import posixpath
import re

from .go_text import SEC, go_duration, go_list, go_quote, multierror

DISPATCH_PAYLOAD_SIZE_LIMIT = 16 * 1024

JOB_TYPES = ("service", "batch", "system", "sysbatch")
PAYLOAD_MODES = ("optional", "required", "forbidden")
TEMPLATE_CHANGE_MODES = ("noop", "restart", "signal", "script")
IDENTITY_NAME = re.compile(r"^[a-zA-Z0-9-_]{1,128}$")


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
    destinations: dict[str, int] = {}
    for idx, template in enumerate(t.get("Templates") or []):
        template_errors = validate_template(template)
        if template_errors:
            errs.append(f"Template {idx + 1} validation failed: {multierror(template_errors)}")
        if template["DestPath"] in destinations:
            other = destinations[template["DestPath"]]
            errs.append(f"Template {idx + 1} has same destination as {other}")
        else:
            destinations[template["DestPath"]] = idx + 1
    for identity in [t.get("Identity"), *(t.get("Identities") or [])]:
        if identity is not None:
            identity_errors = _validate_identity(identity)
            if identity_errors:
                name = go_quote(identity["Name"])
                errs.append(f"Identity {name} is invalid: {multierror(identity_errors)}")
    return errs


def validate_template(t: dict) -> list[str]:
    """structs.Template.Validate."""
    errs = []
    if not t["SourcePath"] and not t["EmbeddedTmpl"]:
        errs.append("Must specify a source path or have an embedded template")
    if not t["DestPath"]:
        errs.append("Must specify a destination for the template")
    if escapes_alloc_dir("task", t["DestPath"]):
        errs.append("destination escapes allocation directory")
    mode = t["ChangeMode"]
    if mode == "signal":
        if not t["ChangeSignal"]:
            errs.append("Must specify signal value when change mode is signal")
        if t["Envvars"]:
            errs.append("cannot use signals with env var templates")
    elif mode == "script":
        script = t.get("ChangeScript")
        if script is None:
            errs.append("must specify change script configuration value when change mode is script")
        elif not script["Command"]:
            errs.append("must specify script path value when change mode is script")
    elif mode not in TEMPLATE_CHANGE_MODES:
        errs.append(
            "Invalid change mode. Must be one of the following: noop, signal, script, restart"
        )
    if t["Splay"] < 0:
        errs.append("Must specify positive splay value")
    if t["Perms"] and not re.fullmatch(r"[+-]?[0-7]{1,4}", t["Perms"]):
        errs.append(
            f"Failed to parse {go_quote(t['Perms'])} as octal: strconv.ParseUint: "
            f"parsing {go_quote(t['Perms'])}: invalid syntax"
        )
    wait = t.get("Wait") or {}
    low, high = wait.get("Min"), wait.get("Max")
    if low is not None and high is not None and low > high:
        errs.append(f"wait min {go_duration(low)} is greater than max {go_duration(high)}")
    return errs


def escapes_alloc_dir(prefix: str, path: str) -> bool:
    """helper/escapingfs.PathEscapesAllocViaRelative: whether ``path``, taken
    relative to ``<alloc dir>/<prefix>``, leaves the allocation directory."""
    alloc = "/alloc-dir/alloc-id"
    joined = posixpath.normpath(posixpath.join(alloc, prefix, path))
    return posixpath.relpath(joined, alloc).startswith("..")


def _validate_identity(wi: dict) -> list[str]:
    """structs.WorkloadIdentity.Validate (the parts the refinery's jobs can meet)."""
    errs = []
    if not IDENTITY_NAME.match(wi["Name"]):
        name = go_quote(wi["Name"])
        errs.append(f"invalid name {name}. Must match regex {IDENTITY_NAME.pattern}")
    for i, audience in enumerate(wi.get("Audience") or []):
        if audience == "":
            errs.append(f"an empty string is an invalid audience ({i + 1})")
    mode, signal = wi.get("ChangeMode") or "", wi.get("ChangeSignal") or ""
    if mode in ("", "noop", "restart"):
        if signal:
            errs.append(f'can only use change_signal="{signal}" with change_mode="signal"')
    elif mode == "signal":
        if not signal:
            errs.append('change_signal must be specified when using change_mode="signal"')
    else:
        errs.append(f"invalid change_mode: {mode}")
    if wi.get("TTL", 0) > 0 and wi["Name"] == "default":
        errs.append("ttl for default identity not yet supported")
    if wi.get("TTL", 0) < 0:
        errs.append("ttl must be >= 0")
    if wi.get("Filepath") and not wi.get("File"):
        errs.append("file parameter must be true in order to specify filepath")
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
