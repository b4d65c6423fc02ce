"""New attempts of failed jobs, and giving up on them.

Every attempt is a row: a retry is a new row with `num_retries + 1` (unless the
failed attempt was interrupted, which costs no retry), the same batches, and
the RAM `foreman.ram` says. The Foreman owns every retry; an operator may ask
for one more with `manage.py jobs retry`.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction

from common.models import Job
from foreman import notify
from foreman.ram import next_ram_mb

logger = logging.getLogger(__name__)


def retries_left(job: Job) -> bool:
    """Whether the Foreman may retry this failed attempt by itself."""
    if job.no_retry:
        return False
    return job.interrupted or job.num_retries < settings.REFINERY_MAX_RETRIES


def retry(job: Job, ram_mb: int | None = None) -> Job | None:
    """A new `created` attempt of the failed `job` (None when another process
    retried it first). Sending it is the caller's business."""
    ram = ram_mb or next_ram_mb(job)
    new = job.create_retry(ram_mb=ram)
    if new is not None:
        step = f", {job.ram_mb} → {ram} MB" if ram != job.ram_mb else ""
        logger.info("%s retried as %s job %s (retry %s%s)", job, new.kind, new.pk,
                    new.num_retries, step)  # fmt: skip
    return new


def give_up(job: Job, notify_operators: bool = True) -> bool:
    """Settle a failed attempt for good and, unless told not to, queue one
    notification for it, in one transaction. Returns whether this call settled it."""
    with transaction.atomic():
        if not job.give_up():
            return False
        if notify_operators:
            notify.record(job)
    if notify_operators:
        logger.warning("gave up on %s: %s", job, job.failure_reason)
    return True


def settle_failed(job: Job) -> Job | None:
    """What the Foreman does with a failed attempt nobody handled: retry it, or
    give up on it. Returns the new attempt, if any."""
    if retries_left(job):
        return retry(job)
    give_up(job)
    return None
