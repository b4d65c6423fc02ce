"""How Nomad reads a request body and a job: Go's JSON decoding, the api package's
defaults (Canonicalize) and the server's validation (Job.Validate), as far as the
stand-in needs them. See ``reference/nomad-api.md``.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
import time
from typing import Any

SEC = 1_000_000_000
MINUTE = 60 * SEC
HOUR = 60 * MINUTE

DISPATCH_PAYLOAD_SIZE_LIMIT = 16 * 1024
JOB_DEFAULT_PRIORITY = 50
DEFAULT_KILL_TIMEOUT = 5 * SEC
JOB_TYPES = ("service", "batch", "system", "sysbatch")
PAYLOAD_MODES = ("optional", "required", "forbidden")


class HTTPError(Exception):
    """An answer that is not 2xx: Nomad writes the message as plain text."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


# --------------------------------------------------------------------------- formatting


def go_quote(s: str) -> str:
    """Go's %q for the strings Nomad quotes."""
    return json.dumps(s, ensure_ascii=False)


def go_list(items: list[str]) -> str:
    """Go's %v of a []string: ``[a b]``."""
    return "[" + " ".join(items) + "]"


def multierror(errors: list[str]) -> str:
    """hashicorp/go-multierror's ListFormatFunc."""
    if len(errors) == 1:
        return f"1 error occurred:\n\t* {errors[0]}\n\n"
    points = "\n\t".join(f"* {e}" for e in errors)
    return f"{len(errors)} errors occurred:\n\t{points}\n\n"


def _frac(value: int, unit: int, digits: int) -> str:
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    return f"{whole}." + f"{frac:0{digits}d}".rstrip("0")


def go_duration(ns: int) -> str:
    """Go's time.Duration.String(): 15s, 24h0m0s, 1m30s, 500ms."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    u = abs(ns)
    if u < 1000:
        return f"{sign}{u}ns"
    if u < 1_000_000:
        return sign + _frac(u, 1000, 3) + "µs"
    if u < SEC:
        return sign + _frac(u, 1_000_000, 6) + "ms"
    hours, rest = divmod(u, HOUR)
    minutes, rest = divmod(rest, MINUTE)
    out = sign
    if hours:
        out += f"{hours}h"
    if hours or minutes:
        out += f"{minutes}m"
    return out + _frac(rest, SEC, 9) + "s"


def rfc3339(ns: int | None) -> str:
    """Go's time.Time in JSON (RFC 3339 with nanoseconds); the zero time if unset."""
    if not ns:
        return "0001-01-01T00:00:00Z"
    secs, frac = divmod(ns, SEC)
    out = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    if frac:
        out += "." + f"{frac:09d}".rstrip("0")
    return out + "Z"


_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def parse_go_bool(value: str) -> bool:
    """strconv.ParseBool (python-nomad sends Python's ``True``/``False``)."""
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f'strconv.ParseBool: parsing "{value}": invalid syntax')


# --------------------------------------------------------------------------- Go's JSON


class _GoNumber(float):
    """A JSON number that was not an integer literal; keeps its text for errors."""

    text = ""


def _parse_float(text: str) -> _GoNumber:
    n = _GoNumber(text)
    n.text = text
    return n


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def decode_body(body: bytes) -> Any:
    """``json.NewDecoder(req.Body).Decode``: the first JSON value; 400 if none."""
    if not body:
        raise HTTPError(400, "Request body is empty")
    text = body.decode("utf-8", errors="replace")
    start = len(text) - len(text.lstrip(" \t\r\n"))
    if start == len(text):
        raise HTTPError(400, "EOF")
    decoder = json.JSONDecoder(parse_float=_parse_float, parse_constant=_reject_constant)
    try:
        value, _end = decoder.raw_decode(text, start)
    except (json.JSONDecodeError, ValueError) as e:
        pos = getattr(e, "pos", start)
        if pos >= len(text):
            raise HTTPError(400, "unexpected EOF") from None
        raise HTTPError(
            400, f"invalid character {text[pos]!r} looking for beginning of value"
        ) from None
    return value


class Struct:
    """A Go struct type: field name to type; JSON keys match case-insensitively."""

    def __init__(self, go_name: str, fields: dict[str, Any]):
        self.go_name = go_name
        self.name = go_name.rsplit(".", 1)[-1]
        self.fields = fields
        self._folded = {k.lower(): k for k in fields}

    def match(self, key: str) -> str | None:
        if key in self.fields:
            return key
        return self._folded.get(key.lower())


STR = ("scalar", "string")
INT = ("scalar", "int")
UINT64 = ("scalar", "uint64")
BOOL = ("scalar", "bool")
DURATION = ("scalar", "time.Duration")
BYTES = ("bytes", "[]uint8")
ANY = ("any", "interface {}")


def list_of(t: Any) -> tuple:
    return ("list", t)


def map_of(t: Any) -> tuple:
    return ("map", t)


ANYLIST = list_of(ANY)

RESTART_POLICY = Struct(
    "api.RestartPolicy",
    {
        "Interval": DURATION,
        "Attempts": INT,
        "Delay": DURATION,
        "Mode": STR,
        "RenderTemplates": BOOL,
    },
)
RESCHEDULE_POLICY = Struct(
    "api.ReschedulePolicy",
    {
        "Attempts": INT,
        "Interval": DURATION,
        "Delay": DURATION,
        "DelayFunction": STR,
        "MaxDelay": DURATION,
        "Unlimited": BOOL,
    },
)
EPHEMERAL_DISK = Struct("api.EphemeralDisk", {"Sticky": BOOL, "Migrate": BOOL, "SizeMB": INT})
LOG_CONFIG = Struct(
    "api.LogConfig", {"MaxFiles": INT, "MaxFileSizeMB": INT, "Disabled": BOOL, "Enabled": BOOL}
)
REQUESTED_DEVICE = Struct(
    "api.RequestedDevice",
    {"Name": STR, "Count": UINT64, "Constraints": ANYLIST, "Affinities": ANYLIST},
)
RESOURCES = Struct(
    "api.Resources",
    {
        "CPU": INT,
        "Cores": INT,
        "MemoryMB": INT,
        "MemoryMaxMB": INT,
        "DiskMB": INT,
        "Networks": ANYLIST,
        "Devices": list_of(REQUESTED_DEVICE),
        "IOPS": INT,
        "NUMA": ANY,
        "SecretsMB": INT,
    },
)
DISPATCH_PAYLOAD_CONFIG = Struct("api.DispatchPayloadConfig", {"File": STR})
TASK = Struct(
    "api.Task",
    {
        "Name": STR,
        "Driver": STR,
        "User": STR,
        "Lifecycle": ANY,
        "Config": map_of(ANY),
        "Constraints": ANYLIST,
        "Affinities": ANYLIST,
        "Env": map_of(STR),
        "Services": ANYLIST,
        "Resources": RESOURCES,
        "RestartPolicy": RESTART_POLICY,
        "Meta": map_of(STR),
        "KillTimeout": DURATION,
        "LogConfig": LOG_CONFIG,
        "Artifacts": ANYLIST,
        "Vault": ANY,
        "Consul": ANY,
        "Templates": ANYLIST,
        "DispatchPayload": DISPATCH_PAYLOAD_CONFIG,
        "VolumeMounts": ANYLIST,
        "CSIPluginConfig": ANY,
        "Leader": BOOL,
        "ShutdownDelay": DURATION,
        "KillSignal": STR,
        "Kind": STR,
        "ScalingPolicies": ANYLIST,
        "Identity": ANY,
        "Identities": ANYLIST,
        "Actions": ANYLIST,
        "Schedule": ANY,
    },
)
TASK_GROUP = Struct(
    "api.TaskGroup",
    {
        "Name": STR,
        "Count": INT,
        "Constraints": ANYLIST,
        "Affinities": ANYLIST,
        "Tasks": list_of(TASK),
        "Spreads": ANYLIST,
        "Volumes": ANY,
        "RestartPolicy": RESTART_POLICY,
        "Disconnect": ANY,
        "ReschedulePolicy": RESCHEDULE_POLICY,
        "EphemeralDisk": EPHEMERAL_DISK,
        "Update": ANY,
        "Migrate": ANY,
        "Networks": ANYLIST,
        "Meta": map_of(STR),
        "Services": ANYLIST,
        "ShutdownDelay": DURATION,
        "StopAfterClientDisconnect": DURATION,
        "MaxClientDisconnect": DURATION,
        "Scaling": ANY,
        "Consul": ANY,
        "PreventRescheduleOnLost": BOOL,
    },
)
PARAMETERIZED_JOB = Struct(
    "api.ParameterizedJobConfig",
    {"Payload": STR, "MetaRequired": list_of(STR), "MetaOptional": list_of(STR)},
)
JOB = Struct(
    "api.Job",
    {
        "Region": STR,
        "Namespace": STR,
        "ID": STR,
        "Name": STR,
        "Type": STR,
        "Priority": INT,
        "AllAtOnce": BOOL,
        "Datacenters": list_of(STR),
        "NodePool": STR,
        "Constraints": ANYLIST,
        "Affinities": ANYLIST,
        "TaskGroups": list_of(TASK_GROUP),
        "Update": ANY,
        "Multiregion": ANY,
        "Spreads": ANYLIST,
        "Periodic": ANY,
        "ParameterizedJob": PARAMETERIZED_JOB,
        "Reschedule": RESCHEDULE_POLICY,
        "Migrate": ANY,
        "Meta": map_of(STR),
        "UI": ANY,
        "ConsulToken": STR,
        "ConsulNamespace": STR,
        "VaultToken": STR,
        "VaultNamespace": STR,
        "NomadTokenID": STR,
        "Stop": BOOL,
        "ParentID": STR,
        "Dispatched": BOOL,
        "DispatchIdempotencyToken": STR,
        "Payload": BYTES,
        "Status": STR,
        "StatusDescription": STR,
        "Stable": BOOL,
        "Version": UINT64,
        "SubmitTime": INT,
        "CreateIndex": UINT64,
        "ModifyIndex": UINT64,
        "JobModifyIndex": UINT64,
    },
)
JOB_REGISTER_REQUEST = Struct(
    "api.JobRegisterRequest",
    {
        "Job": JOB,
        "Submission": ANY,
        "EnforceIndex": BOOL,
        "JobModifyIndex": UINT64,
        "PolicyOverride": BOOL,
        "PreserveCounts": BOOL,
        "EvalPriority": INT,
        "Region": STR,
        "Namespace": STR,
        "SecretID": STR,
    },
)
# structs.JobDispatchRequest. Its embedded WriteRequest also has an IdempotencyToken
# field, but the reference note says the token is read from the query string only,
# so the stand-in leaves it out: a token in the body is ignored.
JOB_DISPATCH_REQUEST = Struct(
    "structs.JobDispatchRequest",
    {
        "JobID": STR,
        "Payload": BYTES,
        "Meta": map_of(STR),
        "IdPrefixTemplate": STR,
        "Region": STR,
        "Namespace": STR,
        "AuthToken": STR,
    },
)


def _go_type(t: Any) -> str:
    if isinstance(t, Struct):
        return t.go_name
    kind = t[0]
    if kind == "list":
        inner = t[1]
        return "[]" + ("*" + inner.go_name if isinstance(inner, Struct) else _go_type(inner))
    if kind == "map":
        return "map[string]" + _go_type(t[1])
    return t[1]


def _json_kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, _GoNumber):
        return "number " + v.text
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _plain(v: Any) -> Any:
    if isinstance(v, _GoNumber):
        return float(v)
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


def _base64(value: str) -> bytes:
    cleaned = value.replace("\r", "").replace("\n", "")
    try:
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
        pos = next((i for i, c in enumerate(cleaned) if c not in alphabet), len(cleaned))
        raise HTTPError(400, f"illegal base64 data at input byte {pos}") from None


def decode(value: Any, t: Struct) -> dict:
    """Decode a JSON value into Go struct ``t`` the way encoding/json does: unknown
    keys are dropped, keys match case-insensitively, a wrong type is a 400."""
    if not isinstance(value, dict):
        if value is None:
            return {}
        raise HTTPError(
            400, f"json: cannot unmarshal {_json_kind(value)} into Go value of type {t.go_name}"
        )
    return _decode(value, t, t.name, [])


def _decode(v: Any, t: Any, struct_name: str, path: list[str]) -> Any:
    if v is None:
        return None

    def mismatch() -> HTTPError:
        return HTTPError(
            400,
            f"json: cannot unmarshal {_json_kind(v)} into Go struct field "
            f"{struct_name}.{'.'.join(path)} of type {_go_type(t)}",
        )

    if isinstance(t, Struct):
        if not isinstance(v, dict):
            raise mismatch()
        out: dict[str, Any] = {}
        for key, item in v.items():
            name = t.match(key)
            if name is not None:
                out[name] = _decode(item, t.fields[name], t.name, [*path, name])
        return out
    kind = t[0]
    if kind == "any":
        return _plain(v)
    if kind == "list":
        if not isinstance(v, list):
            raise mismatch()
        return [_decode(x, t[1], struct_name, path) for x in v]
    if kind == "map":
        if not isinstance(v, dict):
            raise mismatch()
        return {k: _decode(x, t[1], struct_name, path) for k, x in v.items()}
    if kind == "bytes":
        if isinstance(v, str):
            return _base64(v)
        if isinstance(v, list) and all(
            isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 256 for x in v
        ):
            return bytes(v)
        raise mismatch()
    go = t[1]
    if go == "string":
        if not isinstance(v, str):
            raise mismatch()
        return v
    if go == "bool":
        if not isinstance(v, bool):
            raise mismatch()
        return v
    # integers: int, uint64, time.Duration
    if isinstance(v, bool) or not isinstance(v, int):
        raise mismatch()
    if go == "uint64" and v < 0:
        raise HTTPError(
            400,
            f"json: cannot unmarshal number {v} into Go struct field "
            f"{struct_name}.{'.'.join(path)} of type uint64",
        )
    return v


# --------------------------------------------------------------------------- defaults


def default_restart_policy(job_type: str) -> dict:
    if job_type in ("service", "system"):
        return {"Interval": 30 * MINUTE, "Attempts": 2, "Delay": 15 * SEC, "Mode": "fail"}
    return {"Interval": 24 * HOUR, "Attempts": 3, "Delay": 15 * SEC, "Mode": "fail"}


def default_reschedule_policy(job_type: str) -> dict | None:
    if job_type == "batch":
        return {
            "Attempts": 1,
            "Interval": 24 * HOUR,
            "Delay": 5 * SEC,
            "DelayFunction": "constant",
            "MaxDelay": 0,
            "Unlimited": False,
        }
    if job_type == "service":
        return {
            "Attempts": 0,
            "Interval": 0,
            "Delay": 30 * SEC,
            "DelayFunction": "exponential",
            "MaxDelay": HOUR,
            "Unlimited": True,
        }
    return None


def _merge(defaults: dict, given: dict | None) -> dict:
    out = dict(defaults)
    for k, v in (given or {}).items():
        if v is not None:
            out[k] = v
    return out


def canonicalize_job(job: dict, namespace: str, region: str) -> dict:
    """api.Job.Canonicalize plus the server's job canonicalizer."""
    j = copy.deepcopy(job)
    for dropped in (
        "Status",
        "StatusDescription",
        "Stable",
        "Version",
        "SubmitTime",
        "CreateIndex",
        "ModifyIndex",
        "JobModifyIndex",
        "ParentID",
        "Dispatched",
        "DispatchIdempotencyToken",
    ):
        j.pop(dropped, None)
    j["Namespace"] = namespace
    j["Region"] = region
    if j.get("Name") is None:
        j["Name"] = j["ID"]
    if j.get("Type") is None:
        j["Type"] = "service"
    if not j.get("Priority"):
        j["Priority"] = JOB_DEFAULT_PRIORITY
    if not j.get("Datacenters"):
        j["Datacenters"] = ["*"]
    if not j.get("NodePool"):
        j["NodePool"] = "default"
    for flag in ("AllAtOnce", "Stop"):
        if j.get(flag) is None:
            j[flag] = False
    for s in ("ConsulToken", "ConsulNamespace", "VaultToken", "VaultNamespace", "NomadTokenID"):
        if j.get(s) is None:
            j[s] = ""
    if j.get("ParameterizedJob") is not None:
        p = j["ParameterizedJob"]
        if not p.get("Payload"):
            p["Payload"] = "optional"
        p.setdefault("MetaRequired", None)
        p.setdefault("MetaOptional", None)
    job_reschedule = j.pop("Reschedule", None)
    groups = j.get("TaskGroups") or []
    j["TaskGroups"] = groups
    for tg in groups:
        _canonicalize_group(tg, j["Type"], job_reschedule)
    for key, typ in JOB.fields.items():
        if key not in j and key not in ("Reschedule", "Payload"):
            j[key] = _zero(typ)
    return j


def _zero(typ: Any) -> Any:
    if isinstance(typ, tuple) and typ[0] == "scalar":
        return {"string": "", "bool": False}.get(typ[1], 0)
    return None


def _canonicalize_group(tg: dict, job_type: str, job_reschedule: dict | None) -> None:
    if tg.get("Name") is None:
        tg["Name"] = ""
    if tg.get("Count") is None:
        tg["Count"] = 1
    tg["EphemeralDisk"] = _merge(
        {"Sticky": False, "Migrate": False, "SizeMB": 300}, tg.get("EphemeralDisk")
    )
    tg["RestartPolicy"] = _merge(default_restart_policy(job_type), tg.get("RestartPolicy"))
    tg["RestartPolicy"].setdefault("RenderTemplates", False)
    reschedule = tg.get("ReschedulePolicy")
    if job_reschedule is not None:
        reschedule = _merge(job_reschedule, reschedule)
    defaults = default_reschedule_policy(job_type)
    if job_type in ("system", "sysbatch") and reschedule is None:
        tg["ReschedulePolicy"] = None
    elif defaults is not None:
        tg["ReschedulePolicy"] = _merge(defaults, reschedule)
    else:
        tg["ReschedulePolicy"] = reschedule
    tasks = tg.get("Tasks") or []
    tg["Tasks"] = tasks
    for task in tasks:
        _canonicalize_task(task, tg["RestartPolicy"])
    for key, typ in TASK_GROUP.fields.items():
        if key not in tg:
            tg[key] = _zero(typ)


def _canonicalize_task(task: dict, group_restart: dict) -> None:
    for s in ("Name", "Driver", "User", "KillSignal", "Kind"):
        if task.get(s) is None:
            task[s] = ""
    if task.get("Leader") is None:
        task["Leader"] = False
    if task.get("KillTimeout") is None:
        task["KillTimeout"] = DEFAULT_KILL_TIMEOUT
    task["LogConfig"] = _merge(
        {"MaxFiles": 10, "MaxFileSizeMB": 10, "Disabled": False}, task.get("LogConfig")
    )
    r = dict(task.get("Resources") or {})
    if r.get("CPU") is None and r.get("Cores") is None:
        r["CPU"] = 100
    for k in ("CPU", "Cores", "MemoryMaxMB", "DiskMB", "IOPS", "SecretsMB"):
        if r.get(k) is None:
            r[k] = 0
    if r.get("MemoryMB") is None:
        r["MemoryMB"] = 300
    r.setdefault("Networks", None)
    r.setdefault("NUMA", None)
    devices = r.get("Devices")
    if devices:
        for d in devices:
            if d.get("Count") is None:
                d["Count"] = 1
            d.setdefault("Name", "")
            d.setdefault("Constraints", None)
            d.setdefault("Affinities", None)
    else:
        r["Devices"] = None
    task["Resources"] = r
    task["RestartPolicy"] = _merge(group_restart, task.get("RestartPolicy"))
    for key, typ in TASK.fields.items():
        if key not in task:
            task[key] = _zero(typ)


# --------------------------------------------------------------------------- validation


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
