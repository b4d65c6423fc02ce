"""The `bcl2fastq` pipeline: a run's base calls to demultiplexed FASTQ.

    checks: find_archive, read_manifest (the run's archive, as the archive
            pipeline finds it), choose_engine
    own steps: unpack_for_conversion, convert, gather_results
    then the shared upload step stores every FASTQ and report as a result with
    its provenance, and record_stats keeps the figures per lane and sample

Engines (REFINERY_BCL_ENGINE): `builtin` (processors/bcl, needs nothing
installed), `bcl-convert` and `bcl2fastq` (Illumina's, run with their real
command lines when their binaries are on the PATH); `auto`, the default, takes
BCL Convert, else bcl2fastq, else the built-in converter. Whatever the engine,
its FASTQs are gathered and its reports read the same way, and the run moves
to `demultiplexing` and `demultiplexed` with the job (`JOB_RULES`).

Only what conversion needs is unpacked from the archive: RunInfo.xml, the
sample sheet, RunParameters.xml and Data/Intensities' base calls, filters and
positions (no thumbnails, no InterOp), each checked against the manifest.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from pathlib import Path

from django.conf import settings

from common.models import DemultiplexStat, ProcessorJob, RunState
from common.run_archive import ArchiveError, extract_members
from common.storage import StorageError, sha256_of_file, temporary_storage
from processors.demultiplex_reports import read_reports
from processors.external_tools import run_tool, tool_version
from processors.illumina_run_archive import ArchiveContext, find_archive, read_manifest
from processors.index_tools import available_cpus
from processors.pipeline import add_computed_file, run_processor
from runner.pipeline import JobError

ENGINES = ("builtin", "bcl-convert", "bcl2fastq")
# What a converter reads from a run folder (paths inside it).
NEEDED = re.compile(
    r"^(RunInfo\.xml|[Rr]unParameters\.xml|SampleSheet\.csv"
    r"|Data/Intensities/(s\.locs|L\d{3}/.*\.c?locs"
    r"|BaseCalls/L\d{3}/(.*\.(bcl|bcl\.gz|bcl\.bgzf|bci|cbcl|filter))))$"
)


class Bcl2FastqContext(ArchiveContext, total=False):
    engine: str
    run_folder: Path
    output: Path
    sample_sheet: Path | None
    stats: list[dict]
    conversion: dict


# A run is demultiplexed once its archive is verified: the states follow each other.
ARCHIVE_DONE = (RunState.ARCHIVED, RunState.DEMULTIPLEXING, RunState.DEMULTIPLEXED)


def waits_for_archive(job: ProcessorJob) -> str:
    """Why a bcl2fastq job must stay `created`: its run's archive is not verified
    yet (the Foreman sends it once it is). "" when it may run."""
    for batch in job.batches.select_related("sequencing_run"):
        run = batch.sequencing_run
        if run is not None and run.state not in ARCHIVE_DONE:
            return f"waits for run {run.run_id}'s archive to be verified (the run is {run.state})"
    return ""


def choose_engine(context: Bcl2FastqContext) -> Bcl2FastqContext:
    """The engine REFINERY_BCL_ENGINE names (auto: BCL Convert, else bcl2fastq,
    else the built-in converter); one that is named but not installed fails."""
    asked = settings.REFINERY_BCL_ENGINE
    if asked == "auto":
        engine = next((e for e in ENGINES[1:] if shutil.which(e)), "builtin")
    elif asked in ENGINES:
        engine = asked
        if engine != "builtin" and not shutil.which(engine):
            raise JobError(
                f"REFINERY_BCL_ENGINE is {engine}, which is not installed on this worker "
                "(not found on PATH): install it, or use auto or builtin"
            )
    else:
        raise JobError(
            f"REFINERY_BCL_ENGINE is {asked!r}: use one of auto, {', '.join(ENGINES)}",
            no_retry=True,
        )
    context["engine"] = engine
    context["parameters"].update(engine=engine)
    return context


def unpack_for_conversion(context: Bcl2FastqContext) -> Bcl2FastqContext:
    """The files a converter reads, from the archive in temporary storage."""
    archive = context["archive"]
    folder = context["work_dir"] / "run" / context["manifest"].get("run_folder", "run")
    folder.mkdir(parents=True)
    try:
        with contextlib.closing(temporary_storage().open(archive.temp_key)) as stream:
            extract_members(stream, context["manifest"], folder, lambda p: bool(NEEDED.match(p)))
    except ArchiveError as error:
        raise JobError(f"{archive.filename}: {error}", no_retry=True) from None
    except StorageError as error:
        raise JobError(f"cannot read {archive.filename}: {error}") from error
    sheet = folder / "SampleSheet.csv"
    if not sheet.exists():
        raise JobError(
            "the run's archive has no SampleSheet.csv: add one to the run folder and survey again",
            no_retry=True,
        )
    context.update(run_folder=folder, sample_sheet=sheet, output=context["work_dir"] / "fastq")
    context["parameters"].update(
        sample_sheet_sha256=sha256_of_file(sheet),
        archive_sha256=archive.sha256,
        include_non_pf=bool(settings.REFINERY_BCL_INCLUDE_NON_PF),
    )
    return context


def convert(context: Bcl2FastqContext) -> Bcl2FastqContext:
    engine, folder, output = context["engine"], context["run_folder"], context["output"]
    sheet = context["sample_sheet"]
    if engine == "builtin":
        from processors.bcl.convert import ENGINE, ENGINE_VERSION, ConvertOptions, convert_run
        from processors.bcl.errors import ConversionError

        try:
            report = convert_run(
                folder, output, sheet, ConvertOptions.from_settings(threads=available_cpus())
            )
        except ConversionError as error:
            raise JobError(str(error), no_retry=True) from None
        context["tools"][ENGINE] = ENGINE_VERSION
        context["conversion"] = {
            "i5_orientation": report.i5_orientation,
            "i5_reason": report.i5_reason,
            "formats": report.formats,
            "settings": report.settings,
            "read_structure": report.read_structure,
        }
    elif engine == "bcl-convert":
        context["tools"]["bcl-convert"] = tool_version("bcl-convert", "--version")
        run_tool(
            context,
            "bcl-convert",
            ["--bcl-input-directory", folder, "--output-directory", output,
             "--sample-sheet", sheet],
        )  # fmt: skip
    else:
        context["tools"]["bcl2fastq"] = tool_version("bcl2fastq", "--version")
        run_tool(
            context,
            "bcl2fastq",
            ["-R", folder, "-o", output, "--sample-sheet", sheet,
             "-p", str(available_cpus())],
        )  # fmt: skip
    context["parameters"].update(context.get("conversion", {}))
    return context


def gather_results(context: Bcl2FastqContext) -> Bcl2FastqContext:
    """Every FASTQ the engine wrote (bcl2fastq puts them in project folders) and
    its reports, as results; the figures, for the database."""
    output = context["output"]
    fastqs = sorted(output.rglob("*.fastq.gz"))
    if not fastqs:
        raise JobError(f"{context['engine']} wrote no FASTQ file", no_retry=True)
    names = [path.name for path in fastqs]
    duplicate = next((name for name in names if names.count(name) > 1), None)
    if duplicate:
        raise JobError(f"{duplicate} was written twice (in two projects)", no_retry=True)
    for path in fastqs:
        add_computed_file(context, path, "fastq.gz")
    context["stats"] = read_reports(output)
    for report in sorted((output / "Reports").glob("*.csv")) + sorted(
        (output / "Stats").glob("Stats.json")
    ):
        add_computed_file(context, report, report.suffix.lstrip("."))
    context["record_results"] = record_stats
    return context


def record_stats(context: Bcl2FastqContext, computed) -> None:
    """Inside the results' transaction: the figures per lane and sample."""
    job = context["job"]
    run = context["batches"][0].sequencing_run
    if run is None:
        return
    DemultiplexStat.objects.filter(processor_job=job).delete()
    for row in context["stats"]:
        DemultiplexStat(run=run, processor_job=job, **row).save()


def demultiplex_run(job: ProcessorJob) -> Bcl2FastqContext:
    """The archive is read from temporary storage, not copied into the job
    directory first: only the files conversion needs are unpacked."""
    return run_processor(
        job,
        [unpack_for_conversion, convert, gather_results],
        checks=[find_archive, read_manifest, choose_engine],
        fetch_inputs=False,
    )
