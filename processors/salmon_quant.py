"""The `salmon_quant` pipeline (issue 13): not built yet on this branch. Its jobs
fail at once, without retry, with a reason saying so, rather than waiting."""

from __future__ import annotations

from common.models import ProcessorJob
from runner.pipeline import JobContext, JobError, run_pipeline


def not_built(context: JobContext) -> JobContext:
    raise JobError(
        "the salmon_quant processor is not built yet: the run was downloaded and checked, "
        "and waits for it",
        no_retry=True,
    )


def quantify_run(job: ProcessorJob) -> JobContext:
    return run_pipeline(job, [not_built])
