"""The defaults a job gets: the api package's Canonicalize and the server's job
canonicalizer (batch restart 3 attempts/15 s/24 h/fail, reschedule 1 attempt, CPU 100,
MemoryMB 300, KillTimeout 5 s, a template's change mode restart and splay 5 s, the
default workload identity ...).
"""

from __future__ import annotations

import copy
from typing import Any

from .api_types import JOB, TASK, TASK_GROUP, TEMPLATE, WORKLOAD_IDENTITY
from .go_text import HOUR, MINUTE, SEC

JOB_DEFAULT_PRIORITY = 50
DEFAULT_KILL_TIMEOUT = 5 * SEC
DEFAULT_IDENTITY = "default"
IDENTITY_DEFAULT_AUDIENCE = "nomadproject.io"


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
    for template in task.get("Templates") or []:
        _canonicalize_template(template)
    _canonicalize_identities(task)
    for key, typ in TASK.fields.items():
        if key not in task:
            task[key] = _zero(typ)


def _canonicalize_template(t: dict) -> None:
    """api.Template.Canonicalize, then structs.Template.Canonicalize."""
    for key, default in (("SourcePath", ""), ("DestPath", ""), ("EmbeddedTmpl", "")):
        if t.get(key) is None:
            t[key] = default
    if t.get("ChangeMode") is None:
        t["ChangeMode"] = "restart"
    if t.get("ChangeSignal") is None:
        t["ChangeSignal"] = "SIGHUP" if t["ChangeMode"] == "signal" else ""
    else:
        t["ChangeSignal"] = t["ChangeSignal"].upper()
    script = t.get("ChangeScript")
    if script is not None:
        defaults = {
            "Command": "",
            "Args": [],
            "Timeout": 5 * SEC,
            "FailOnError": False,
            "RunOnFirstRender": False,
        }
        t["ChangeScript"] = _merge(defaults, script)
    defaults = {
        "Once": False,
        "Splay": 5 * SEC,
        "Perms": "0644",
        "LeftDelim": "{{",
        "RightDelim": "}}",
        "Envvars": False,
        "ErrMissingKey": False,
        "VaultGrace": 0,
    }
    for key, default in defaults.items():
        if t.get(key) is None:
            t[key] = default
    for key, typ in TEMPLATE.fields.items():
        if key not in t:
            t[key] = _zero(typ)


def _canonicalize_identities(task: dict) -> None:
    """structs.Task.Canonicalize: the default workload identity lives in Identity
    (taken out of Identities if given there), and every task has one."""
    identities = task.get("Identities") or []
    for wi in identities:
        _canonicalize_identity(wi)
    default = next((wi for wi in identities if wi["Name"] == DEFAULT_IDENTITY), None)
    if default is not None:
        identities.remove(default)
        task["Identity"] = default
    task["Identities"] = identities or None
    if task.get("Identity") is None:
        task["Identity"] = {"Name": DEFAULT_IDENTITY, "Audience": [IDENTITY_DEFAULT_AUDIENCE]}
    _canonicalize_identity(task["Identity"])


def _canonicalize_identity(wi: dict) -> None:
    if not wi.get("Name"):
        wi["Name"] = DEFAULT_IDENTITY
    if wi["Name"] == DEFAULT_IDENTITY:
        wi["Audience"] = [IDENTITY_DEFAULT_AUDIENCE]
    if wi.get("ChangeSignal"):
        wi["ChangeSignal"] = wi["ChangeSignal"].upper()
    for key, typ in WORKLOAD_IDENTITY.fields.items():
        if wi.get(key) is None:
            wi[key] = _zero(typ)
