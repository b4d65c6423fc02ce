"""RAM escalation: which failed attempts ran out of memory, and how much the next
attempt gets.

A job killed for memory often records no reason at all: the kernel's OOM killer
sends SIGKILL, and the supervisor records exit code 137. An attempt that started
and then died that way, or with no reason, or that says it ran out of GPU memory
("CUDA out of memory"), is retried one step up its ladder
(`REFINERY_RAM_LADDERS_MB`). An attempt that never started is not escalated:
memory cannot have been its problem.
"""

from __future__ import annotations

from django.conf import settings

from common.models import Job
from common.models.choices import JobKind

OOM_EXIT_CODE = 128 + 9
# What mark_failed records when given no reason.
NO_REASON = ("", "failed without a reason")
# A GPU's memory is not the kernel's to watch: a job that ran out of it says so in
# its reason (the basecalling processor, when Dorado reports it).
OUT_OF_GPU_MEMORY = "CUDA out of memory"


def ran_out_of_memory(job: Job) -> bool:
    """Whether this failed attempt looks killed for memory (or ran out of a GPU's)."""
    if job.start_time is None or job.interrupted:
        return False
    return (
        job.exit_code == OOM_EXIT_CODE
        or job.failure_reason.strip() in NO_REASON
        or OUT_OF_GPU_MEMORY in job.failure_reason
    )


def ram_ladder(job: Job) -> list[int]:
    """The RAM steps (MB) for this job's kind and pipeline or task."""
    by_kind = settings.REFINERY_RAM_LADDERS_MB.get(job.kind, {})
    if job.kind == JobKind.PROCESSOR:
        name = job.pipeline
    elif job.kind == JobKind.DOWNLOADER:
        name = job.downloader_task
    else:
        name = job.source
    return sorted(by_kind.get(name) or by_kind.get("default") or [])


def next_ram_mb(job: Job) -> int:
    """The RAM the next attempt of a failed `job` gets: one step up the ladder
    when it ran out of memory (the top step stays the top), else the same."""
    if not ran_out_of_memory(job):
        return job.ram_mb
    for step in ram_ladder(job):
        if step > job.ram_mb:
            return step
    return job.ram_mb
