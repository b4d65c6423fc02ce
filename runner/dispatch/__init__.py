"""Sending jobs to workers.

`send_job(job)` hands a committed job to the configured dispatcher, after the
surrounding transaction commits (an outbox): if the dispatcher cannot take it
after a few quick retries, the job stays `created` and the Foreman sends it
later. The Foreman asks about dispatched work through the same dispatcher's
`status`, `stop`, `capacity` and `work_end`, whichever dispatcher it is.
"""

from runner.dispatch.base import (
    Capacity,
    Dispatcher,
    DispatchError,
    DispatchStatus,
    WorkEnd,
    get_dispatcher,
)
from runner.dispatch.outbox import send_job, send_job_now

__all__ = [
    "Capacity",
    "DispatchError",
    "DispatchStatus",
    "Dispatcher",
    "WorkEnd",
    "get_dispatcher",
    "send_job",
    "send_job_now",
]
