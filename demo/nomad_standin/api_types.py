"""The Go structs the stand-in decodes, field by field: a job (``api.Job`` and what it
holds) and the register and dispatch requests.
"""

from __future__ import annotations

from .go_json import ANY, ANYLIST, BOOL, BYTES, DURATION, INT, STR, UINT64, Struct, list_of, map_of

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
CHANGE_SCRIPT = Struct(
    "api.ChangeScript",
    {
        "Command": STR,
        "Args": list_of(STR),
        "Timeout": DURATION,
        "FailOnError": BOOL,
        "RunOnFirstRender": BOOL,
    },
)
WAIT_CONFIG = Struct("api.WaitConfig", {"Min": DURATION, "Max": DURATION})
TEMPLATE = Struct(
    "api.Template",
    {
        "SourcePath": STR,
        "DestPath": STR,
        "EmbeddedTmpl": STR,
        "ChangeMode": STR,
        "ChangeScript": CHANGE_SCRIPT,
        "ChangeSignal": STR,
        "Once": BOOL,
        "Splay": DURATION,
        "Perms": STR,
        "Uid": INT,
        "Gid": INT,
        "LeftDelim": STR,
        "RightDelim": STR,
        "Envvars": BOOL,
        "VaultGrace": DURATION,
        "Wait": WAIT_CONFIG,
        "ErrMissingKey": BOOL,
    },
)
WORKLOAD_IDENTITY = Struct(
    "api.WorkloadIdentity",
    {
        "Name": STR,
        "Audience": list_of(STR),
        "ChangeMode": STR,
        "ChangeSignal": STR,
        "Env": BOOL,
        "File": BOOL,
        "Filepath": STR,
        "ServiceName": STR,
        "TTL": DURATION,
        "ExtraClaims": list_of(STR),
    },
)
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
        "Templates": list_of(TEMPLATE),
        "DispatchPayload": DISPATCH_PAYLOAD_CONFIG,
        "VolumeMounts": ANYLIST,
        "CSIPluginConfig": ANY,
        "Leader": BOOL,
        "ShutdownDelay": DURATION,
        "KillSignal": STR,
        "Kind": STR,
        "ScalingPolicies": ANYLIST,
        "Identity": WORKLOAD_IDENTITY,
        "Identities": list_of(WORKLOAD_IDENTITY),
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
# structs.VariableDecrypted, the body of PUT /v1/var/<path> (its VariableMetadata's
# fields are promoted).
VARIABLE = Struct(
    "structs.VariableDecrypted",
    {
        "Namespace": STR,
        "Path": STR,
        "Lock": ANY,
        "CreateIndex": UINT64,
        "CreateTime": INT,
        "ModifyIndex": UINT64,
        "ModifyTime": INT,
        "Items": map_of(STR),
    },
)
