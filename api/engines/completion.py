"""The claim of a job's completion: one request, and only one, records what an
engine reports of a job (a replay, or a second request racing the first, is
refused with 409).

The claim is a mark on the job's `dispatch_id`, set by one conditional UPDATE
that also checks the job is the engine's and running, and returns the job's row
(RETURNING, as `Job.claim_next` returns the job it claims): the completion of a
running job reads nothing else before it is recorded.
"""

from __future__ import annotations

from functools import cache

from django.db import connection

from common.models import JobState, ProcessorJob
from common.models.sql_rows import model_rows
from runner.engines import engine_worker_id

COMPLETING = ":completing"


@cache
def claim_completion_sql(vendor: str, same_claim: bool) -> str:
    """The UPDATE that marks a running job's completion as claimed, in the SQL of
    `vendor`'s database; with `same_claim`, only while its claim is the one given."""
    q = connection.ops.quote_name
    meta = ProcessorJob._meta
    table = q(meta.db_table)
    pk, worker, state, dispatch = (
        q(meta.get_field(name).column) for name in ("id", "worker_id", "state", "dispatch_id")
    )
    sql = (
        f"UPDATE {table} SET {dispatch} = {dispatch} || %s "
        f"WHERE {pk} = %s AND {worker} = %s AND {state} = %s AND {dispatch} NOT LIKE %s"
    )
    if same_claim:
        sql += f" AND {dispatch} = %s"
    return sql + " RETURNING *"


def claim_completion(
    engine: str, job_id: int, dispatch_id: str | None = None
) -> ProcessorJob | None:
    """Job `job_id`, now being completed by this request, when it runs on `engine`
    and nobody completes it yet (and, given `dispatch_id`, when it is still that
    claim of the job); None otherwise, and nothing changed."""
    params = [COMPLETING, job_id, engine_worker_id(engine), JobState.RUNNING, f"%{COMPLETING}"]
    if dispatch_id is not None:
        params.append(dispatch_id)
    sql = claim_completion_sql(connection.vendor, dispatch_id is not None)
    claimed = model_rows(ProcessorJob, sql, params)
    return claimed[0] if claimed else None
