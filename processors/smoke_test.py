"""The smoke-test pipeline: checks that a deployment runs jobs end to end.

It does what its batch's metadata asks: `sleep_s` (seconds of pretend work),
`fail` (a reason: the step reports failure), `raise` (a message: the step
raises), `no_retry` (with `fail`), `exit_code` (the process exits abruptly),
`result_mb` (an extra result of that many MiB, to exercise large uploads).
Then it writes a small JSON report and stores it as a result.
"""

from __future__ import annotations

import json
import os
import time

from common.models import ProcessorJob
from processors.pipeline import ProcessorContext, add_computed_file, run_processor
from runner.pipeline import JobError


def simulate_work(context: ProcessorContext) -> ProcessorContext:
    asked = context["batches"][0].metadata
    time.sleep(float(asked.get("sleep_s", 0)))
    if "exit_code" in asked:
        os._exit(int(asked["exit_code"]))
    if "raise" in asked:
        raise RuntimeError(asked["raise"])
    if "fail" in asked:
        raise JobError(asked["fail"], no_retry=bool(asked.get("no_retry")))
    return context


def write_report(context: ProcessorContext) -> ProcessorContext:
    report = context["work_dir"] / "smoke_test.json"
    report.write_text(
        json.dumps(
            {
                "job": context["job_id"],
                "batches": [str(b) for b in context["batches"]],
                "worker": context["job"].worker_id,
            }
        )
    )
    add_computed_file(context, report, "json")
    megabytes = int(context["batches"][0].metadata.get("result_mb", 0))
    if megabytes:
        bulk = context["work_dir"] / "smoke_test.bin"
        with open(bulk, "wb") as out:
            for _ in range(megabytes):
                out.write(os.urandom(1024 * 1024))
        add_computed_file(context, bulk, "bin")
    return context


def run_smoke_test(job: ProcessorJob) -> ProcessorContext:
    """Its inputs are never fetched: the smoke test needs only its batch's metadata."""
    return run_processor(job, [simulate_work, write_report], fetch_inputs=False)
