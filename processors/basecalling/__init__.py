"""The `basecalling` pipeline: a batch of a Nanopore run's pod5 files basecalled
with Dorado into one gzip FASTQ per pod5 file (or, with REFINERY_DORADO_OUTPUT=bam,
one unaligned BAM per pod5 file: Dorado's own output without `--emit-fastq`).

    dorado basecaller <REFINERY_DORADO_MODEL> <folder of the batch's pod5> --emit-fastq

Dorado writes every read to standard output with the pod5 file it came from
(`fn:Z:`); the output is split back into one FASTQ per pod5 file (as
BCManager's users expect), and every read id of the input must be accounted for
(called, or among those Dorado reports filtered) before the results are stored
with their provenance: Dorado's version and model, read counts, mean quality,
total bases, and the input files' checksums.

Dorado needs a GPU: on Nomad this pipeline's jobs go to the GPU tier
(`REFINERY_NOMAD_GPU_PIPELINES`); a local worker takes them only where Dorado
is installed (`why_dorado_cannot_run`), and elsewhere they stay queued.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from django.conf import settings

from common.models import ProcessorJob
from processors.basecalling.dorado import (
    basecaller_command,
    dorado_path,
    dorado_version,
    run_basecaller,
    why_dorado_cannot_run,
)
from processors.basecalling.reads import check_basecalls, read_ids_of_pod5, split_calls
from processors.pipeline import ProcessorContext, add_computed_file, run_processor
from runner.pipeline import JobError
from runner.steps import checked_filename
from runner.work_dirs import work_path

__all__ = ["basecall_batch", "check_basecalls", "why_dorado_cannot_run"]

OUTPUTS = {"fastq": ".fastq.gz", "bam": ".bam"}  # REFINERY_DORADO_OUTPUT → file ending


class BasecallingContext(ProcessorContext, total=False):
    dorado: str  # the binary
    pod5_folder: Path
    pod5_names: dict[int, str]  # OriginalFile id → its name in pod5_folder
    expected_reads: dict[str, list[str]]  # pod5 name → its read ids


def output_name(pod5_name: str, output: str | None = None) -> str:
    """The name of the output for one pod5 file (a worker's and an engine's alike)."""
    return pod5_name.removesuffix(".pod5") + OUTPUTS[output or output_format()]


def output_format() -> str:
    value = (settings.REFINERY_DORADO_OUTPUT or "fastq").lower()
    if value not in OUTPUTS:
        raise JobError(
            f"REFINERY_DORADO_OUTPUT is {value!r}: use fastq (one gzip FASTQ per pod5 "
            "file) or bam (one unaligned BAM per pod5 file)",
            no_retry=True,
        )
    return value


def find_dorado(context: BasecallingContext) -> BasecallingContext:
    """Dorado is here and answers --version: checked before any input is fetched."""
    output_format()
    binary = dorado_path()
    if binary is None:
        raise JobError(
            f"Dorado is not installed on this worker (REFINERY_DORADO="
            f"{settings.REFINERY_DORADO!r} not found): run basecalling on a GPU worker with "
            "Dorado, then retry the job",
            no_retry=True,
        )
    context["dorado"] = binary
    context["tools"]["dorado"] = dorado_version(binary)
    model = settings.REFINERY_DORADO_MODEL
    context["parameters"].update(model=model, output=output_format())
    return context


def pod5_link_names(original_files: list) -> dict[int, str]:
    """The name each pod5 file of a batch has in the folder Dorado reads (its
    own, or `<file id>-<name>` when two share one, as pod5_pass/x.pod5 and
    pod5_fail/x.pod5 do). A remote engine's ASSIGNED folder uses the same."""
    counts = Counter(checked_filename(f) for f in original_files)
    return {
        f.pk: checked_filename(f) if counts[checked_filename(f)] == 1 else f"{f.pk}-{f.filename}"
        for f in original_files
    }


def link_pod5_folder(context: BasecallingContext) -> BasecallingContext:
    """One folder holding (links to) the batch's pod5 files, for Dorado to read,
    and the read ids each holds."""
    folder = work_path(context["work_dir"], "pod5")
    folder.mkdir()
    names = pod5_link_names(context["original_files"])
    expected: dict[str, list[str]] = {}
    for original in context["original_files"]:
        name = names[original.pk]
        os.symlink(context["raw_paths"][original.pk], folder / name)
        try:
            expected[name] = read_ids_of_pod5(folder / name)
        except Exception as error:
            raise JobError(
                f"{original.filename} cannot be read as pod5 ({type(error).__name__}): "
                "download it again",
                no_retry=True,
            ) from None
    context.update(pod5_folder=folder, pod5_names=names, expected_reads=expected)
    return context


def basecall(context: BasecallingContext) -> BasecallingContext:
    """Dorado over the folder; its calls split into one output per pod5 file,
    checked against the input's reads."""
    model, output = context["parameters"]["model"], context["parameters"]["output"]
    fastq = output == "fastq"
    command = basecaller_command(context["dorado"], model, context["pod5_folder"], fastq=fastq)
    context["commands"].append(command)
    print("$ " + " ".join(command), flush=True)
    calls = work_path(context["work_dir"], f"calls.{output}")
    result = run_basecaller(command, calls, work_path(context["work_dir"], "dorado.log"))
    out = work_path(context["work_dir"], "calls")
    out.mkdir()
    outputs = {name: out / output_name(name, output) for name in context["expected_reads"]}
    split_calls(calls, outputs)
    calls.unlink()
    summary = check_basecalls(context["expected_reads"], outputs, result.filtered)
    if result.called is not None and result.called != summary.records:
        raise JobError(
            f"Dorado reports {result.called} read(s) basecalled but wrote {summary.records}"
        )
    for path in outputs.values():
        add_computed_file(context, path, OUTPUTS[output].lstrip("."))
    context["parameters"].update(
        summary.as_parameters(),
        dorado_reported={"basecalled": result.called, "filtered": result.filtered},
    )
    print(
        f"{summary.reads_called} of {summary.reads_in} read(s) called, "
        f"{summary.reads_not_called} filtered; {summary.bases} bases, mean qscore "
        f"{summary.mean_qscore}",
        flush=True,
    )
    return context


def basecall_batch(job: ProcessorJob) -> BasecallingContext:
    return run_processor(job, [link_pod5_folder, basecall], checks=[find_dorado])
