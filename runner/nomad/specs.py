"""Every Nomad job of the refinery, generated from one definition.

- One **parameterized batch job per worker class and RAM tier**,
  `REFINERY_<CLASS>_<RAM>`: the worker classes are the job kinds (`SURVEY`,
  `DOWNLOADER`, `PROCESSOR`) and, when a pipeline needs a GPU, `PROCESSOR_GPU`.
  Each runs `python manage.py run_job ${NOMAD_META_JOB_KIND} ${NOMAD_META_JOB_ID}`
  in its kind's image, with dispatch meta `JOB_ID` and `JOB_KIND` required and no
  payload, and with restart and reschedule attempts 0: the Foreman owns every
  retry, so each attempt is a row of its own.
- The **Foreman** as a service job, `REFINERY_FOREMAN` (`python manage.py foreman`).
- One **periodic batch job per scheduled survey**, `REFINERY_SCHEDULED_SURVEY_<NAME>`
  (`python manage.py survey --queue <args>`).
- One **service job per watcher** (REFINERY_NOMAD_WATCHES), `REFINERY_WATCH_<NAME>`
  (`python manage.py watch <args> --queue`), with the instruments' share mounted
  read-only from a host volume.

Images are `<registry>/refinery-<image>:<tag>` (docker/build.sh). The tasks get
the settings they need, copied from the environment of the process that generates
the specifications (`manage.py nomad register`; see runner/nomad/task_env.py): the
plain ones in their `Env`, the secrets through a template that renders the job's
Nomad Variable `nomad/jobs/<job>` into their environment. The specifications hold
no secret: `all_specs` returns the variables beside them, for `register` to write.
Every task has its workload identity as `NOMAD_TOKEN`, to dispatch the jobs it
creates and (the Foreman) to watch them, as far as the ACL policy attached to its
job allows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from common.models.choices import SurveySource
from common.secrets import redact_text
from runner.nomad.task_env import TaskSettings, masked_env, task_settings
from runner.nomad.task_spec import (
    NS_PER_S,
    TaskSpec,
    build_group,
    build_task,
    image,
    variable_path,
)
from runner.nomad.worker_classes import (
    WorkerClass,
    worker_classes,
)

FOREMAN_JOB_ID = "REFINERY_FOREMAN"
SCHEDULED_SURVEY_PREFIX = "REFINERY_SCHEDULED_SURVEY_"
WATCH_PREFIX = "REFINERY_WATCH_"
META_REQUIRED = ["JOB_ID", "JOB_KIND"]
RUN_JOB_ARGS = ["manage.py", "run_job", "${NOMAD_META_JOB_KIND}", "${NOMAD_META_JOB_ID}"]
GPU_DEVICE = {"Name": "nvidia/gpu", "Count": 1}
# Nomad never retries a refinery job: the Foreman does, so that every attempt shows.
NO_RESTART = {"Attempts": 0, "Mode": "fail"}
NO_RESCHEDULE = {"Attempts": 0, "Unlimited": False}


# --- the jobs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SpecOptions:
    """What the specifications are generated with: images, and the environment the
    tasks' settings are copied from (default: this process's)."""

    registry: str | None = None
    tag: str | None = None
    environ: Mapping[str, str] | None = None

    def image(self, name: str) -> str:
        return image(name, self.registry, self.tag)

    def task_settings(self) -> TaskSettings:
        return task_settings(self.environ)


def parameterized_job(
    worker: WorkerClass, ram_mb: int, options: SpecOptions, given: TaskSettings
) -> dict:
    """The parameterized batch job `REFINERY_<CLASS>_<RAM>`."""
    job_id = worker.parent_id(ram_mb)
    spec = TaskSpec(
        job_id=job_id,
        name=worker.kind,
        image=options.image(worker.image),
        args=list(RUN_JOB_ARGS),
        cpu_mhz=worker.cpu_mhz,
        ram_mb=ram_mb,
    )
    task = build_task(spec, given)
    if worker.gpu:
        task["Resources"]["Devices"] = [dict(GPU_DEVICE)]
    return {
        "ID": job_id,
        "Name": job_id,
        "Type": "batch",
        "Datacenters": list(settings.REFINERY_NOMAD_DATACENTERS),
        "Meta": {
            "refinery_kind": worker.kind,
            "refinery_ram_mb": str(ram_mb),
            "refinery_gpu": "true" if worker.gpu else "false",
        },
        "ParameterizedJob": {"Payload": "forbidden", "MetaRequired": list(META_REQUIRED)},
        "TaskGroups": [build_group(worker.kind, task, NO_RESTART, NO_RESCHEDULE)],
    }


def foreman_job(options: SpecOptions, given: TaskSettings) -> dict:
    """The Foreman's loop as a service job of one allocation. Unlike refinery jobs,
    Nomad restarts it when it dies (and when its secrets change)."""
    spec = TaskSpec(
        FOREMAN_JOB_ID,
        "foreman",
        options.image(settings.REFINERY_NOMAD_IMAGES["foreman"]),
        ["manage.py", "foreman"],
        settings.REFINERY_NOMAD_CPU_MHZ["foreman"],
        settings.REFINERY_NOMAD_FOREMAN_RAM_MB,
        foreman=True,
    )
    task = build_task(spec, given)
    restart = {"Attempts": 3, "Interval": 30 * 60 * NS_PER_S, "Delay": 15 * NS_PER_S}
    return {
        "ID": FOREMAN_JOB_ID,
        "Name": FOREMAN_JOB_ID,
        "Type": "service",
        "Datacenters": list(settings.REFINERY_NOMAD_DATACENTERS),
        "Meta": {"refinery_kind": "foreman"},
        "TaskGroups": [build_group("foreman", task, {**restart, "Mode": "delay"}, None)],
    }


@dataclass(frozen=True)
class ScheduledSurvey:
    name: str
    cron: str
    args: tuple[str, ...]

    @property
    def job_id(self) -> str:
        return SCHEDULED_SURVEY_PREFIX + re.sub(r"[^A-Z0-9]+", "_", self.name.upper()).strip("_")


def scheduled_surveys() -> list[ScheduledSurvey]:
    """REFINERY_SCHEDULED_SURVEYS, checked."""
    entries = settings.REFINERY_SCHEDULED_SURVEYS
    where = "REFINERY_SCHEDULED_SURVEYS"
    if not isinstance(entries, list):
        raise ImproperlyConfigured(f"{where} must be a JSON list, not {type(entries).__name__}")
    surveys = []
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or set(entry) - {"name", "cron", "args"}:
            raise ImproperlyConfigured(
                f'{where} entry {number} must be {{"name": ..., "cron": ..., "args": [...]}}, '
                f"not {entry!r}"
            )
        name, cron, args = entry.get("name"), entry.get("cron"), entry.get("args")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", name):
            raise ImproperlyConfigured(f"{where} entry {number}: name {name!r} must be a word")
        if not isinstance(cron, str) or len(cron.split()) not in (5, 6, 7):
            raise ImproperlyConfigured(
                f"{where} entry {name!r}: cron {cron!r} must be a cron expression "
                '("0 3 * * 1": minute hour day month weekday)'
            )
        if (
            not isinstance(args, list)
            or not args
            or not all(isinstance(a, str) for a in args)
            or args[0] not in SurveySource.values
        ):
            raise ImproperlyConfigured(
                f"{where} entry {name!r}: args must be the arguments of `manage.py survey`, "
                f"starting with a source ({', '.join(SurveySource.values)}), not {args!r}"
            )
        surveys.append(ScheduledSurvey(name, cron, tuple(args)))
    ids = [s.job_id for s in surveys]
    if len(set(ids)) != len(ids):
        raise ImproperlyConfigured(f"{where}: two entries have the same name ({ids})")
    return surveys


def scheduled_survey_job(
    survey: ScheduledSurvey, options: SpecOptions, given: TaskSettings
) -> dict:
    """A periodic batch job that queues the survey as a SurveyJob (which Nomad then
    runs as REFINERY_SURVEY_<RAM>, with the Foreman's retries)."""
    spec = TaskSpec(
        survey.job_id,
        "survey",
        options.image(settings.REFINERY_NOMAD_IMAGES["survey"]),
        ["manage.py", "survey", "--queue", *survey.args],
        settings.REFINERY_NOMAD_CPU_MHZ["survey"],
        settings.REFINERY_NOMAD_SCHEDULED_SURVEY_RAM_MB,
    )
    task = build_task(spec, given)
    return {
        "ID": survey.job_id,
        "Name": survey.job_id,
        "Type": "batch",
        "Datacenters": list(settings.REFINERY_NOMAD_DATACENTERS),
        "Meta": {"refinery_kind": "scheduled_survey", "refinery_schedule": survey.name},
        "Periodic": {
            "Enabled": True,
            "SpecType": "cron",
            "Spec": survey.cron,
            "ProhibitOverlap": True,
            "TimeZone": settings.REFINERY_SCHEDULED_SURVEYS_TIME_ZONE,
        },
        "TaskGroups": [build_group("survey", task, NO_RESTART, NO_RESCHEDULE)],
    }


@dataclass(frozen=True)
class Watch:
    name: str
    args: tuple[str, ...]
    volume: str = ""
    mount: str = ""

    @property
    def job_id(self) -> str:
        return WATCH_PREFIX + re.sub(r"[^A-Z0-9]+", "_", self.name.upper()).strip("_")


def watches() -> list[Watch]:
    """REFINERY_NOMAD_WATCHES, checked."""
    where, entries = "REFINERY_NOMAD_WATCHES", settings.REFINERY_NOMAD_WATCHES
    if not isinstance(entries, list):
        raise ImproperlyConfigured(f"{where} must be a JSON list, not {type(entries).__name__}")
    found = []
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or set(entry) - {"name", "args", "volume", "mount"}:
            raise ImproperlyConfigured(
                f'{where} entry {number} must be {{"name": ..., "args": [...], "volume": ..., '
                f'"mount": ...}}, not {entry!r}'
            )
        name, args = entry.get("name"), entry.get("args")
        volume, mount = entry.get("volume") or "", entry.get("mount") or ""
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", name):
            raise ImproperlyConfigured(f"{where} entry {number}: name {name!r} must be a word")
        sources = [SurveySource.ILLUMINA_RUNS, SurveySource.NANOPORE_RUNS]  # folder sources
        if (
            not isinstance(args, list)
            or len(args) < 2
            or not all(isinstance(a, str) for a in args)
            or args[0] not in sources
        ):
            raise ImproperlyConfigured(
                f"{where} entry {name!r}: args must be the arguments of `manage.py watch`, "
                f"a source ({', '.join(sources)}) and its folders, not {args!r}"
            )
        if not isinstance(volume, str) or not isinstance(mount, str) or bool(volume) != bool(mount):
            raise ImproperlyConfigured(
                f"{where} entry {name!r}: give both a host volume and where to mount it "
                '("volume": "sequencers", "mount": "/runs"), or neither'
            )
        found.append(Watch(name, tuple(args), volume, mount))
    ids = [w.job_id for w in found]
    if len(set(ids)) != len(ids):
        raise ImproperlyConfigured(f"{where}: two entries have the same name ({ids})")
    return found


def watch_job(watch: Watch, options: SpecOptions, given: TaskSettings) -> dict:
    """A service job that watches folders and queues a survey job when they change
    (Nomad restarts it when it dies; the surveys are ordinary jobs)."""
    spec = TaskSpec(
        watch.job_id,
        "watch",
        options.image(settings.REFINERY_NOMAD_IMAGES["survey"]),
        ["manage.py", "watch", *watch.args, "--queue"],
        settings.REFINERY_NOMAD_CPU_MHZ["survey"],
        settings.REFINERY_NOMAD_WATCH_RAM_MB,
    )
    task = build_task(spec, given)
    group = build_group(
        "watch", task, {"Attempts": 3, "Interval": 30 * 60 * NS_PER_S,
                        "Delay": 15 * NS_PER_S, "Mode": "delay"}, None,
    )  # fmt: skip
    if watch.volume:
        group.setdefault("Volumes", {})[watch.volume] = {
            "Name": watch.volume, "Type": "host", "Source": watch.volume, "ReadOnly": True,
        }  # fmt: skip
        task.setdefault("VolumeMounts", []).append(
            {"Volume": watch.volume, "Destination": watch.mount, "ReadOnly": True}
        )
    return {
        "ID": watch.job_id,
        "Name": watch.job_id,
        "Type": "service",
        "Datacenters": list(settings.REFINERY_NOMAD_DATACENTERS),
        "Meta": {"refinery_kind": "watch", "refinery_watch": watch.name},
        "TaskGroups": [group],
    }


@dataclass(frozen=True)
class Specs:
    """Every job the refinery registers (Nomad's API `Job` objects), the items of
    each job's Nomad Variable (its secrets, by variable path), and the settings
    the tasks were given."""

    jobs: list[dict]
    variables: dict[str, dict[str, str]]
    task_settings: TaskSettings


def all_specs(options: SpecOptions | None = None) -> Specs:
    """Every job the refinery registers, with the variables they read."""
    options = options or SpecOptions()
    task = options.task_settings()
    jobs = [
        parameterized_job(worker, ram, options, task)
        for worker in worker_classes()
        for ram in worker.ram_tiers_mb
    ]
    if settings.REFINERY_NOMAD_RUN_FOREMAN:
        jobs.append(foreman_job(options, task))
    jobs.extend(scheduled_survey_job(survey, options, task) for survey in scheduled_surveys())
    jobs.extend(watch_job(watch, options, task) for watch in watches())
    variables = {}
    for job in jobs:
        secrets = task.secrets_for(foreman=job["ID"] == FOREMAN_JOB_ID)
        if secrets:
            variables[variable_path(job["ID"])] = secrets
    return Specs(jobs, variables, task)


def all_jobs(options: SpecOptions | None = None) -> list[dict]:
    """Every job the refinery registers, as the `Job` object of Nomad's API."""
    return all_specs(options).jobs


def masked(job: dict, secrets: Mapping[str, str] | None = None) -> dict:
    """A copy of `job` with anything in its tasks' `Env` that looks secret masked, and
    in their command lines credentials in URLs and the values of `secrets` (the
    secrets themselves are in the job's variable, not here), for review."""
    groups = []
    for group in job["TaskGroups"]:
        tasks = []
        for task in group["Tasks"]:
            config = dict(task.get("Config") or {})
            if "args" in config:
                config["args"] = [redact_text(arg, dict(secrets or {})) for arg in config["args"]]
            tasks.append({**task, "Env": masked_env(task["Env"]), "Config": config})
        groups.append({**group, "Tasks": tasks})
    return {**job, "TaskGroups": groups}
