"""Basecalls a remote engine made (api/engines/), received by the refinery.

The engine ran Dorado on a batch's pod5 files and sends one output per pod5
file (`<pod5 name without .pod5>.fastq.gz`, or `.bam`). Before anything is
recorded they are checked exactly as the processor checks its own
(`check_basecalls`: every read id of the input called, or among the reads the
engine says Dorado filtered), and then stored by the processor's own steps
(`run_processor`: provenance, results and the job's success in one
transaction). Outputs that fail the check fail the job with the reason, and
nothing is stored.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from django.conf import settings

from common.filenames import UnsafeName, check_name
from common.models import OriginalFile, ProcessorJob
from common.storage import LocalStorage, temporary_storage
from processors.basecalling import (
    OUTPUTS,
    BasecallingContext,
    link_pod5_folder,
    output_format,
    output_name,
    pod5_link_names,
)
from processors.basecalling.reads import check_basecalls
from processors.pipeline import add_computed_file, fetch_raw_files, run_processor
from processors.redownload import download_again, missing_inputs
from runner.pipeline import JobError
from runner.work_dirs import work_path


class Upload(Protocol):
    """An uploaded file, as Django gives one."""

    name: str

    def chunks(self) -> Any: ...


def batch_files(job: ProcessorJob) -> list[tuple[OriginalFile, str]]:
    """The job's pod5 files, each with its name in the engine's folder (the
    name Dorado's `fn:Z:` tag will carry)."""
    batches = job.batches.all()
    files = list(OriginalFile.objects.filter(batches__in=batches).distinct().order_by("id"))
    names = pod5_link_names(files)
    return [(f, names[f.pk]) for f in files]


def local_inputs(job: ProcessorJob, files: list[OriginalFile]) -> dict[int, Path] | None:
    """Where the inputs are on this machine, when temporary storage is a local
    folder (None for S3). JobError when some are gone: they are downloaded
    again, as the processor would."""
    storage = temporary_storage()
    missing = missing_inputs(files)
    if missing:
        raise JobError(download_again(job, missing), no_retry=True)
    if not isinstance(storage, LocalStorage):
        return None
    return {f.pk: storage.path(f.temp_key) for f in files}


def unknown_outputs(job: ProcessorJob, names: list[str]) -> str:
    """Why these upload names cannot be a completion of `job` ("" when they can):
    each a plain name, the output of one of the batch's pod5 files, once."""
    wanted = {output_name(name) for _original, name in batch_files(job)}
    problems = []
    for name in names:
        try:
            check_name(name, "an output's name")
        except UnsafeName as error:
            problems.append(str(error))
            continue
        if name not in wanted:
            problems.append(f"{name[:100]!r} is not the output of a pod5 file of job {job.pk}")
    if len(set(names)) != len(names):
        problems.append("an output is sent twice")
    if problems:
        return "; ".join(problems[:5]) + f" (expected: {', '.join(sorted(wanted)[:10])})"
    return ""


# --- the steps ---------------------------------------------------------------------------


def record_engine_tools(context: BasecallingContext) -> BasecallingContext:
    """What the engine says it ran: Dorado's version, the model, the command."""
    report = context["engine_report"]
    context["tools"]["dorado"] = str(report.get("dorado_version") or "unknown")[:64]
    context["parameters"].update(
        model=str(report.get("model") or settings.REFINERY_DORADO_MODEL)[:200],
        output=output_format(),
        engine=context["engine"],
    )
    command = report.get("command")
    if isinstance(command, list) and all(isinstance(a, str) for a in command):
        context["commands"].append([a[:1000] for a in command[:50]])
    return context


def locate_pod5(context: BasecallingContext) -> BasecallingContext:
    """The batch's pod5 files on this machine: in place in a local temporary
    storage (the engine read the same files), fetched and checked from S3."""
    paths = local_inputs(context["job"], context["original_files"])
    if paths is None:
        return fetch_raw_files(context)
    context["raw_paths"] = paths
    return context


def take_engine_outputs(context: BasecallingContext) -> BasecallingContext:
    """The engine's outputs into the job directory, checked against the reads of
    the batch before they become results."""
    output = context["parameters"]["output"]
    out = work_path(context["work_dir"], "calls")
    out.mkdir()
    by_name = {output_name(name, output): name for name in context["expected_reads"]}
    paths: dict[str, Path] = {}
    for upload in context["engine_outputs"]:
        pod5_name = by_name.get(upload.name)
        if pod5_name is None:  # the API checked the names; a changed setting could differ
            raise JobError(f"{upload.name[:100]!r} is not the output of a pod5 file of the batch")
        path = work_path(out, check_name(upload.name, "an output's name"))
        write_upload(upload, path)
        paths[pod5_name] = path
    summary = check_basecalls(context["expected_reads"], paths, context["engine_filtered"])
    reported = context["engine_report"].get("basecalled")
    if isinstance(reported, int) and reported != summary.records:
        raise JobError(
            f"the engine reports {reported} read(s) basecalled but sent {summary.records}"
        )
    for path in paths.values():
        add_computed_file(context, path, OUTPUTS[output].lstrip("."))
    context["parameters"].update(
        summary.as_parameters(),
        dorado_reported={"basecalled": reported, "filtered": context["engine_filtered"]},
    )
    return context


def write_upload(upload: Upload | BinaryIO, path: Path) -> None:
    with open(path, "wb") as out:
        if hasattr(upload, "chunks"):
            for chunk in upload.chunks():
                out.write(chunk)
        else:
            shutil.copyfileobj(upload, out)


def record_engine_basecalls(
    job: ProcessorJob, engine: str, outputs: list[Upload], report: dict
) -> BasecallingContext:
    """Check and record what engine `engine` made of `job` (running on it): the
    processor's steps, with the engine's outputs in place of running Dorado. The
    job leaves succeeded, or failed with why."""
    filtered = report.get("filtered")
    return run_processor(
        job,
        [locate_pod5, link_pod5_folder, take_engine_outputs],
        checks=[record_engine_tools],
        fetch_inputs=False,
        engine=engine,
        engine_outputs=outputs,
        engine_report=report,
        engine_filtered=filtered if isinstance(filtered, int) and filtered >= 0 else 0,
    )
