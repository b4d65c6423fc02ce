"""Which code does the work of each job: the registry of survey sources,
downloader tasks and processor pipelines.

Each pipeline app registers its own in its `AppConfig.ready()` (the surveyor
its sources, the downloaders their tasks, the processors their pipelines), so
the runner never names them and no pipeline app imports another. The names
themselves are the job columns' choices (`common.models.choices`).

A job's work is a callable taking the job row (loaded once by the runtime) and
returning its job_context; `run_pipeline` is how each is written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from common.models import Job
from common.models.choices import DownloaderTask, JobKind, ProcessorPipeline, SurveySource

Work = Callable[[Job], Any]


@dataclass(frozen=True)
class EngineWork:
    """What the engine API (api/engines/) needs from a pipeline that remote engines
    run: the app that owns the pipeline registers it with the pipeline, so the API
    reaches the pipeline's code through the registry and imports no pipeline app."""

    # Each input file's name in the engine's folder, by the file's id.
    input_names: Callable[[list], dict[int, str]]
    # Where the job's inputs are on this machine (None when storage is not a folder).
    local_inputs: Callable[[Job, list], dict[int, Any] | None]
    output_format: Callable[[], str]
    # The output an engine sends back for an input of this name, in this format.
    output_name: Callable[[str, str], str]
    # Why these upload names cannot complete the job ("" when they can).
    unknown_outputs: Callable[[Job, list[str]], str]
    # Check and record an engine's outputs with the pipeline's own steps; returns
    # the job_context (the job leaves succeeded, or failed with why).
    record: Callable[[Job, str, list, dict], Any]


@dataclass(frozen=True)
class Registered:
    name: str
    work: Work
    # A survey source: its ExternalSourceSurveyor subclass (for the command line).
    surveyor: type | None = None
    # A pipeline: the downloader task that fetches its batches' files.
    downloader_task: str = ""
    # A pipeline: why one of its jobs must wait before it is sent ("" when it may go).
    waits_for: Callable[[Job], str] | None = None
    # A pipeline that only some machines can run: why this one cannot ("" when it
    # can; a local worker then leaves its jobs queued for others), and what they need.
    runs_here: Callable[[], str] | None = None
    needs: str = ""
    # A pipeline that remote engines may run (runner/engines.py): what the API needs.
    engine: EngineWork | None = None


_SOURCES: dict[str, Registered] = {}
_TASKS: dict[str, Registered] = {}
_PIPELINES: dict[str, Registered] = {}


class NotRegistered(LookupError):
    """No app registered code for this name; the message says which names exist."""


def register_source(source: str, surveyor: type) -> None:
    """`surveyor` (an ExternalSourceSurveyor subclass) surveys `source`."""
    name = SurveySource(source).value
    _SOURCES[name] = Registered(name, lambda job: surveyor(job).survey(), surveyor=surveyor)


def register_downloader(task: str, work: Work) -> None:
    """`work(job)` runs a DownloaderJob of `task`."""
    name = DownloaderTask(task).value
    _TASKS[name] = Registered(name, work)


def register_pipeline(
    pipeline: str,
    work: Work,
    downloader_task: str | None,
    waits_for: Callable[[Job], str] | None = None,
    runs_here: Callable[[], str] | None = None,
    needs: str = "",
    engine: EngineWork | None = None,
) -> None:
    """`work(job)` runs a ProcessorJob of `pipeline`, whose batches' files the
    downloader task `downloader_task` fetches (None: its batches have no files to
    fetch, and its jobs are created directly, as a dataset's are). `waits_for(job)`,
    if given, says why a job must stay `created` for now (what it needs does not
    exist yet), or "". `runs_here()`, if given, says why this machine cannot run
    the pipeline's jobs (a tool it lacks), or "": local workers leave them queued
    for a machine that has what they `need`. `engine`, if given, lets remote
    engines run the pipeline's jobs through the engine API."""
    name = ProcessorPipeline(pipeline).value
    task = DownloaderTask(downloader_task).value if downloader_task else ""
    _PIPELINES[name] = Registered(
        name,
        work,
        downloader_task=task,
        waits_for=waits_for,
        runs_here=runs_here,
        needs=needs,
        engine=engine,
    )


def engine_runnable() -> tuple[str, ...]:
    """The pipelines remote engines may run (registered with an EngineWork)."""
    return tuple(name for name, entry in _PIPELINES.items() if entry.engine is not None)


def engine_work(pipeline: str) -> EngineWork:
    """What the engine API needs from `pipeline`; NotRegistered when engines do
    not run it."""
    work = _lookup(_PIPELINES, pipeline, "pipeline").engine
    if work is None:
        known = ", ".join(engine_runnable()) or "none"
        raise NotRegistered(f"engines do not run {pipeline!r} jobs (they run: {known})")
    return work


def _lookup(table: dict[str, Registered], name: str, what: str) -> Registered:
    try:
        return table[name]
    except KeyError:
        known = ", ".join(sorted(table)) or "none"
        raise NotRegistered(f"no {what} {name!r} is registered (registered: {known})") from None


def survey_sources() -> dict[str, type]:
    """Every registered source and its surveyor class, in registration order."""
    return {name: entry.surveyor for name, entry in _SOURCES.items()}


def surveyor_class(source: str) -> type:
    """The ExternalSourceSurveyor subclass for `source`."""
    return _lookup(_SOURCES, source, "survey source").surveyor


def downloader_task_for(pipeline: str) -> str:
    """The downloader task that fetches the files of a batch needing `pipeline`."""
    task = _lookup(_PIPELINES, pipeline, "pipeline").downloader_task
    if not task:
        raise NotRegistered(f"pipeline {pipeline!r} has no files to download")
    return task


def wait_reason(job: Job) -> str:
    """Why `job` must wait before it is sent ("" when it may be sent now)."""
    if job.kind != JobKind.PROCESSOR:
        return ""
    registered = _PIPELINES.get(job.pipeline)
    if registered is None or registered.waits_for is None:
        return ""
    return registered.waits_for(job)


def pipeline_checks_here() -> dict[str, str]:
    """Each pipeline that only some machines can run, with why this one cannot
    ("" when it can): a worker checks at start."""
    return {
        name: registered.runs_here()
        for name, registered in _PIPELINES.items()
        if registered.runs_here is not None
    }


def queued_waits() -> list[str]:
    """What queued jobs of pipelines only some machines run wait for, one line per
    pipeline that has any (for `manage.py jobs status`)."""
    from common.models import JobState, ProcessorJob
    from runner.engines import ENGINE_QUEUE

    lines = []
    for name, registered in _PIPELINES.items():
        if registered.runs_here is None:
            continue
        queued = ProcessorJob.objects.filter(state=JobState.QUEUED, pipeline=name).count()
        if not queued:
            continue
        here = registered.runs_here()
        needs = registered.needs or "a worker that can run them"
        where = (
            f"not this machine: {here}"
            if here
            else "this machine can run them: start `manage.py worker` here"
        )
        for_engines = ProcessorJob.objects.filter(
            state=JobState.QUEUED, pipeline=name, dispatch_id=ENGINE_QUEUE
        ).count()
        if for_engines:
            where += f" ({for_engines} kept for engines by REFINERY_ENGINE_PIPELINES)"
        lines.append(f"{queued} queued {name} job(s) wait for {needs}; {where}")
    return lines


def work_for(job: Job) -> Work:
    """The code that does `job`'s work."""
    if job.kind == JobKind.PROCESSOR:
        return _lookup(_PIPELINES, job.pipeline, "pipeline").work
    if job.kind == JobKind.DOWNLOADER:
        return _lookup(_TASKS, job.downloader_task, "downloader task").work
    return _lookup(_SOURCES, job.source, "survey source").work


def source_base_urls() -> list[str]:
    """Every registered source's base URLs, as its settings give them now (with
    the credentials of a private mirror, if it has any): the names of those
    settings are the surveyor's `base_url_settings`."""
    from django.conf import settings

    urls = []
    for registered in _SOURCES.values():
        for name in getattr(registered.surveyor, "base_url_settings", ()):
            value = getattr(settings, name, "")
            if value:
                urls.append(value)
    return urls
