"""An engine's keepalive for a job: one UPDATE, written once (names from the
model's `_meta`), that writes the job's heartbeat only while the job is this
engine's and runs. An engine sends one every few seconds for each job."""

from __future__ import annotations

from functools import cache

from django.db import connection
from django.utils import timezone

from common.models import JobState, ProcessorJob
from runner.engines import engine_worker_id


@cache
def keepalive_sql(vendor: str) -> str:
    """The UPDATE of a running job's heartbeat, in the SQL of `vendor`'s database."""
    q = connection.ops.quote_name
    meta = ProcessorJob._meta
    heartbeat, pk, worker, state = (
        q(meta.get_field(name).column) for name in ("heartbeat_at", "id", "worker_id", "state")
    )
    return (
        f"UPDATE {q(meta.db_table)} SET {heartbeat} = %s "
        f"WHERE {pk} = %s AND {worker} = %s AND {state} = %s"
    )


def beat_engine_job(engine: str, job_id: int) -> bool:
    """Write job `job_id`'s heartbeat; whether it is `engine`'s and runs."""
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    params = [now, job_id, engine_worker_id(engine), JobState.RUNNING]
    with connection.cursor() as cursor:
        cursor.execute(keepalive_sql(connection.vendor), params)
        return cursor.rowcount == 1
