"""Running external tools from a pipeline step, recorded for provenance."""

from __future__ import annotations

import collections
import subprocess
import sys
from functools import cache
from pathlib import Path

from processors.pipeline import ProcessorContext
from runner.pipeline import JobError
from runner.supervisor import die_with_parent

STDERR_TAIL_LINES = 15


def run_tool(
    context: ProcessorContext, tool: str, args: list[str | Path], cwd: Path | None = None
) -> None:
    """Run `tool args…`, streaming its output into the job's log, and record the
    command for the provenance. A non-zero exit fails the step with the tail of
    the tool's stderr."""
    argv = [tool, *(str(a) for a in args)]
    context["commands"].append(argv)
    print("$ " + " ".join(argv), flush=True)
    tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
    try:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            stdout=None,  # inherited: the job's log in a worker
            stderr=subprocess.PIPE,
            preexec_fn=die_with_parent,
        )
    except FileNotFoundError:
        raise JobError(f"{tool} is not installed on this worker (not found on PATH)") from None
    assert process.stderr is not None
    for raw in process.stderr:
        line = raw.decode("utf-8", "replace")
        sys.stderr.write(line)
        if line.strip():
            tail.append(line.rstrip())
    code = process.wait()
    sys.stderr.flush()
    if code != 0:
        detail = "\n".join(tail) or "(nothing on stderr)"
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        raise JobError(f"{Path(tool).name} {how}:\n{detail}")


@cache
def tool_version(tool: str, *version_args: str) -> str:
    """The version a tool reports (first non-empty line of its output)."""
    try:
        result = subprocess.run(
            [tool, *(version_args or ("--version",))],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return "unknown"
    for line in (result.stdout + "\n" + result.stderr).splitlines():
        if line.strip():
            return line.strip()
    return "unknown"
