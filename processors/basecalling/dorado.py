"""Running Dorado (`dorado basecaller <model> <pod5 folder> --emit-fastq`) and
reading what it says: its version, its counts, and why it failed.

Dorado logs on standard error (`[<time>] [info] > Simplex reads basecalled: N`,
`… filtered: N`) and writes the calls on standard output. A run that ends
non-zero is one of:
- out of GPU memory (libtorch's "CUDA out of memory"): worth another attempt
  with more GPU memory: the reason says "CUDA out of memory", which the
  Foreman's RAM escalation (foreman/ram.py) takes as a step up the ladder;
- a model it cannot find (not downloaded, a wrong name or path): no attempt
  can help until an operator installs it: `no_retry`;
- anything else: failed, retried as usual.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from runner.pipeline import JobError
from runner.supervisor import die_with_parent

OUT_OF_MEMORY = re.compile(
    r"CUDA out of memory|CUDA error: out of memory|OutOfMemoryError|CUBLAS_STATUS_ALLOC_FAILED"
    r"|MPS backend out of memory",
    re.IGNORECASE,
)
MISSING_MODEL = re.compile(
    r"Model (path )?does not exist|unknown simplex model|Failed to download model"
    r"|could not find matching|model not found|config\.toml|no models? (was |were )?found",
    re.IGNORECASE,
)
COUNT = re.compile(r"\]\s*(?:>\s*)?Simplex reads (basecalled|filtered):\s*(\d+)")
TAIL_LINES = 20
VERSION_TIMEOUT_S = 60


@dataclass
class DoradoResult:
    called: int | None  # what Dorado says it called
    filtered: int | None  # what it says it filtered out (its failed reads)
    log_tail: list[str]


def dorado_path() -> str | None:
    """Where the configured Dorado is (REFINERY_DORADO: a name on PATH or a path)."""
    return shutil.which(settings.REFINERY_DORADO)


def dorado_version(binary: str) -> str:
    """What `dorado --version` prints (on standard error, as Dorado does)."""
    try:
        result = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=VERSION_TIMEOUT_S
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise JobError(f"{binary} --version failed: {error}", no_retry=True) from None
    lines = [line.strip() for line in (result.stderr + "\n" + result.stdout).splitlines()]
    lines = [line for line in lines if line]
    if result.returncode != 0 or not lines:
        raise JobError(
            f"{binary} --version exited {result.returncode} without a version: is "
            "REFINERY_DORADO Dorado?",
            no_retry=True,
        )
    return lines[-1][:64]


def why_dorado_cannot_run() -> str:
    """Why this machine cannot basecall ("" when it can): Dorado is not found, or
    does not answer --version."""
    binary = dorado_path()
    if binary is None:
        return (
            f"Dorado is not installed here (REFINERY_DORADO={settings.REFINERY_DORADO!r} "
            "is not found on PATH)"
        )
    try:
        dorado_version(binary)
    except JobError as error:
        return error.reason
    return ""


def basecaller_command(binary: str, model: str, pod5_folder: Path, fastq: bool) -> list[str]:
    command = [binary, "basecaller", model, str(pod5_folder)]
    if fastq:
        command.append("--emit-fastq")
    return command


def run_basecaller(command: list[str], calls: Path, log: Path) -> DoradoResult:
    """Run Dorado with its calls into `calls` and its log into `log`; JobError
    when it fails (see the module docstring for which are retried)."""
    with open(calls, "wb") as out, open(log, "wb") as err:
        try:
            code = subprocess.run(
                command,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            ).returncode
        except OSError as error:
            raise JobError(f"cannot run {command[0]}: {error.strerror}", no_retry=True) from None
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    counts: dict[str, int] = {}
    oom = missing = ""
    with open(log, encoding="utf-8", errors="replace") as lines:
        for line in lines:
            line = line.rstrip()
            if not line:
                continue
            tail.append(line)
            if match := COUNT.search(line):
                counts[match.group(1)] = int(match.group(2))
            if not oom and OUT_OF_MEMORY.search(line):
                oom = line.strip()
            if not missing and MISSING_MODEL.search(line):
                missing = line.strip()
    print("\n".join(tail), flush=True)  # into the job's log
    if code != 0:
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        if oom:
            raise JobError(
                f"Dorado ran out of GPU memory (CUDA out of memory) and {how}: {oom[:400]}; "
                "the retry gets the next step of the GPU memory ladder"
            )
        if missing:
            raise JobError(
                f"Dorado cannot find its model {command[2]!r} and {how}: {missing[:400]}; "
                "download it on the GPU workers (`dorado download --model …`) or set "
                "REFINERY_DORADO_MODEL, then retry the job",
                no_retry=True,
            )
        detail = " | ".join(list(tail)[-5:])[:800] or "(nothing on standard error)"
        raise JobError(f"Dorado {how}: {detail}")
    return DoradoResult(
        called=counts.get("basecalled"), filtered=counts.get("filtered"), log_tail=list(tail)
    )
