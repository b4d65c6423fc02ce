"""The parts every refinery job's specification is built of: the image, the task
(its settings, the template that renders its secrets, its workload identity, the
scratch volume) and the task group.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from runner.nomad.task_env import TaskSettings

NS_PER_S = 1_000_000_000
VARIABLE_PREFIX = "nomad/jobs/"
SECRETS_FILE = "secrets/env.env"


def image(name: str, registry: str | None = None, tag: str | None = None) -> str:
    """`<registry>/refinery-<name>:<tag>`, as docker/build.sh names the images."""
    registry = (settings.REFINERY_NOMAD_REGISTRY if registry is None else registry).rstrip("/")
    tag = tag or settings.REFINERY_NOMAD_IMAGE_TAG
    return f"{registry + '/' if registry else ''}refinery-{name}:{tag}"


def _volume_group() -> dict:
    volume = settings.REFINERY_NOMAD_HOST_VOLUME
    if not volume:
        return {}
    return {
        "Volumes": {volume: {"Name": volume, "Type": "host", "Source": volume, "ReadOnly": False}}
    }


def _volume_task() -> dict:
    volume = settings.REFINERY_NOMAD_HOST_VOLUME
    if not volume:
        return {}
    return {
        "VolumeMounts": [
            {
                "Volume": volume,
                "Destination": settings.REFINERY_NOMAD_TASK_HOME,
                "ReadOnly": False,
            }
        ]
    }


def variable_path(job_id: str) -> str:
    """The job's Nomad Variable, which its tasks (and a dispatched child's) may read."""
    return VARIABLE_PREFIX + job_id


def secrets_template(job_id: str, names: list[str], change_mode: str) -> dict:
    """A template that renders the job's variable into the task's environment. It
    names the secrets and holds none; a name missing from the variable fails the
    task rather than giving it an empty value."""
    path = variable_path(job_id)
    lines = "".join(f"{name}={{{{ .{name} | toJSON }}}}\n" for name in names)
    return {
        "EmbeddedTmpl": f'{{{{ with nomadVar "{path}" }}}}\n{lines}{{{{ end }}}}\n',
        "DestPath": SECRETS_FILE,
        "Envvars": True,
        "ChangeMode": change_mode,
        "ErrMissingKey": True,
        "Perms": "0400",
    }


@dataclass(frozen=True)
class TaskSpec:
    """One task of a refinery job: its job, name, image, command and resources."""

    job_id: str
    name: str
    image: str
    args: list[str]
    cpu_mhz: int
    ram_mb: int
    foreman: bool = False  # a service that should restart for new secrets


def build_task(spec: TaskSpec, given: TaskSettings) -> dict:
    change_mode = "restart" if spec.foreman else "noop"
    out = {
        "Name": spec.name,
        "Driver": "docker",
        "Config": {"image": spec.image, "command": "python", "args": spec.args},
        # The image is recorded in every result's provenance.
        "Env": {**given.env, "REFINERY_DOCKER_IMAGE": spec.image},
        "Resources": {"CPU": spec.cpu_mhz, "MemoryMB": spec.ram_mb},
        "KillTimeout": settings.REFINERY_NOMAD_KILL_TIMEOUT_S * NS_PER_S,
        # The workload identity, for the Nomad API (never the operator's token).
        "Identity": {"Env": True, "ChangeMode": change_mode},
        **_volume_task(),
    }
    secrets = given.secrets_for(spec.foreman)
    if secrets:
        out["Templates"] = [secrets_template(spec.job_id, sorted(secrets), change_mode)]
    return out


def build_group(name: str, task: dict, restart: dict, reschedule: dict | None) -> dict:
    group = {"Name": name, "Count": 1, "RestartPolicy": dict(restart)}
    if reschedule is not None:
        group["ReschedulePolicy"] = dict(reschedule)
    return {**group, **_volume_group(), "Tasks": [task]}
