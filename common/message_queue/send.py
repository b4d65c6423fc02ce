"""The outbox: jobs are sent after the transaction that created them commits."""

from __future__ import annotations

import logging

from django.db import transaction
from retrying import retry

from common.message_queue.base import DispatchError, get_dispatcher
from common.models import Job, JobState
from common.secrets import redact

logger = logging.getLogger(__name__)

SEND_ATTEMPTS = 3


def send_job(job: Job) -> None:
    """Send `job` once the current transaction commits (at once outside one).
    A job that cannot be sent stays `created`; the Foreman sends it later."""
    transaction.on_commit(lambda: send_job_now(job), robust=True)


def send_job_now(job: Job) -> bool:
    """Dispatch a committed `created` job now. Returns whether it was sent."""
    if job.state != JobState.CREATED:
        return False
    dispatcher = get_dispatcher()

    @retry(
        stop_max_attempt_number=SEND_ATTEMPTS,
        wait_exponential_multiplier=100,
        wait_exponential_max=1000,
        retry_on_exception=lambda error: isinstance(error, DispatchError),
    )
    def send() -> str:
        return dispatcher.send(job)

    try:
        dispatch_id = send()
    except DispatchError as error:
        logger.warning(
            "%s stays created: %s could not take it (%s); the Foreman will send it later",
            job,
            dispatcher.name,
            redact(str(error)),
        )
        return False
    job.mark_queued(dispatch_id)
    return True
