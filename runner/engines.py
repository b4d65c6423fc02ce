"""Remote engines: workers outside the cluster (GPU servers running Dorado) that
pull work over the REST API (api/engines/) instead of claiming it from the
database or being sent it by Nomad.

An engine is a remote worker, with the same bookkeeping as any other: it claims
a queued ProcessorJob with the local workers' claim (`Job.claim_next`), which
records it as the job's worker (`worker_id` is `engine:<name>`, `dispatch_id`
`engine:<name>:<claim>`); its keepalives are the job's heartbeat; the Foreman
takes back a job whose keepalives stop, as it does a lost local worker's.

Where the jobs wait: with the local dispatcher, queued jobs are in the database
and an engine claims them as a worker would. A cluster's jobs are sent to it
(Nomad sends basecalling to its GPU tier), and an engine never takes a job that
was sent to a cluster: when the GPU servers are outside the cluster,
REFINERY_ENGINE_PIPELINES names the pipelines to keep for engines, and their
jobs are queued in the database (dispatch id `engines`) instead of sent.

For local storage, an engine reads a job's pod5 files from an
`ASSIGNED_<job id>_<engine>/` folder of links to them (BCManager's layout),
under REFINERY_ENGINE_ASSIGNED_DIR. A folder exists only while its job runs on
its engine: it is removed when the job ends, and `clean_assigned_folders` (a
Foreman pass) removes any that no longer match a running job, after a restart
say.
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from common.models import Job, JobState, ProcessorJob
from common.models.choices import JobKind
from runner.registry import engine_runnable
from runner.work_dirs import remove_path

logger = logging.getLogger(__name__)

ENGINE_PREFIX = "engine:"
# The dispatch id of a job queued in the database for engines, not sent anywhere.
ENGINE_QUEUE = "engines"
# The jobs an engine may take: queued by the local dispatcher or for engines.
ENGINE_CLAIMABLE = ("local", ENGINE_QUEUE)
ENGINE_LOST = "engine lost: its keepalives stopped"
# An engine's name: it becomes part of folder names and URLs.
ENGINE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,62}$")
ASSIGNED = re.compile(r"^ASSIGNED_(\d+)_([A-Za-z][A-Za-z0-9._-]{0,62})$")


def engine_name_problem(name: str) -> str:
    """Why `name` cannot name an engine ("" when it can)."""
    if ENGINE_NAME.match(name or ""):
        return ""
    return (
        f"{name[:70]!r} is not an engine name: use a letter, then letters, digits, '.', "
        "'_' or '-' (at most 63 characters)"
    )


def engine_worker_id(name: str) -> str:
    """The `worker_id` of the jobs an engine runs."""
    return ENGINE_PREFIX + name


def engine_of(job: Job) -> str:
    """The engine that runs `job` ("" for any other worker)."""
    if job.worker_id.startswith(ENGINE_PREFIX):
        return job.worker_id[len(ENGINE_PREFIX) :]
    return ""


def engine_pipelines() -> frozenset[str]:
    """REFINERY_ENGINE_PIPELINES: the pipelines whose jobs wait in the database
    for engines instead of being sent to the dispatcher."""
    pipelines = frozenset(settings.REFINERY_ENGINE_PIPELINES)
    runnable = engine_runnable()
    unknown = sorted(pipelines - set(runnable))
    if unknown:
        raise ImproperlyConfigured(
            f"REFINERY_ENGINE_PIPELINES names {unknown}, which engines cannot run: "
            f"use some of {', '.join(runnable)}"
        )
    return pipelines


def kept_for_engines(job: Job) -> bool:
    """Whether `job` is queued for engines rather than sent to the dispatcher."""
    return job.kind == JobKind.PROCESSOR and job.pipeline in engine_pipelines()


def claim_for_engine(name: str, version: str) -> ProcessorJob | None:
    """The oldest queued processor job that an engine may take (of a pipeline
    engines run, queued locally or for engines), now running on the engine
    `name`; None when none waits. The local workers' claim: two engines (or an
    engine and a worker) never take the same job."""
    claim = f"{ENGINE_PREFIX}{name}:{uuid.uuid4().hex[:12]}"
    return ProcessorJob.claim_next(
        engine_worker_id(name),
        version,
        claim,
        pipelines=engine_runnable(),
        queued_as=ENGINE_CLAIMABLE,
    )


# --- ASSIGNED folders ------------------------------------------------------------------------


def assigned_root() -> Path:
    return Path(settings.REFINERY_ENGINE_ASSIGNED_DIR)


def assigned_folder(job_id: int, engine: str) -> Path:
    return assigned_root() / f"ASSIGNED_{int(job_id)}_{engine}"


def make_assigned_folder(job: Job, engine: str, files: dict[str, Path]) -> Path:
    """`ASSIGNED_<job>_<engine>/` holding a link named `name` to each path of
    `files` (names already checked to be plain). Built under a hidden name and
    renamed into place: an engine never sees half a folder."""
    root = assigned_root()
    root.mkdir(parents=True, exist_ok=True)
    final = assigned_folder(job.pk, engine)
    building = root / f".building-{final.name}-{uuid.uuid4().hex[:8]}"
    building.mkdir()
    try:
        for name, path in files.items():
            os.symlink(Path(path).resolve(), building / name)
        remove_path(final)  # one an earlier, killed request left
        building.rename(final)
    except BaseException:
        remove_path(building)
        raise
    return final


def remove_assigned_folder(job: Job) -> None:
    """Remove the ASSIGNED folder of an engine's job, if it has one."""
    engine = engine_of(job)
    if engine:
        remove_path(assigned_folder(job.pk, engine))


def clean_assigned_folders() -> int:
    """Remove every ASSIGNED folder (and half-built one) that does not belong to a
    job running on its engine now; returns how many went."""
    root = assigned_root()
    if not root.is_dir():
        return 0
    found: dict[int, tuple[str, Path]] = {}
    stale: list[Path] = []
    for entry in root.iterdir():
        match = ASSIGNED.match(entry.name)
        if match:
            found[int(match.group(1))] = (match.group(2), entry)
        elif entry.name.startswith(".building-"):
            stale.append(entry)
    if found:
        running = dict(
            ProcessorJob.objects.filter(pk__in=list(found), state=JobState.RUNNING).values_list(
                "pk", "worker_id"
            )
        )
        for job_id, (engine, path) in found.items():
            if running.get(job_id) != engine_worker_id(engine):
                stale.append(path)
    # A folder being built is at most a request old; leave young ones alone.
    for path in stale:
        if path.name.startswith(".building-") and _age_s(path) < 3600:
            continue
        remove_path(path)
        logger.info("removed %s: its job no longer runs on that engine", path)
    return sum(1 for path in stale if not path.exists())


def _age_s(path: Path) -> float:
    import time

    try:
        return time.time() - path.lstat().st_mtime
    except OSError:
        return 1e9
