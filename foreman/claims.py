"""Claiming outbox rows, so that two Foremen never send the same row at once.

A claim is one short transaction that marks a page of due rows as this Foreman's
until a lease runs out (by writing a time into a column the due query reads),
and nothing is sent while it holds a lock: a receiver that never answers holds
up no other process's writes (SQLite has one write lock for the whole
database). On PostgreSQL the rows are read `FOR UPDATE SKIP LOCKED`, so two
Foremen claiming at once take different rows; on SQLite the transaction takes
the write lock when it begins (`transaction_mode` IMMEDIATE), so claims run one
after the other. A Foreman killed after claiming leaves its rows to the next
claim once the lease has run out: a row may then be sent twice, never lost.
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection, transaction
from django.db.models import QuerySet


def claim(queryset: QuerySet, field: str, until: datetime, page: int) -> list[int]:
    """The ids of the first `page` rows of `queryset` (a query of due, unclaimed
    rows, in the order to send them), after writing `until` into their `field`,
    which must take them out of `queryset` until then."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            queryset = queryset.select_for_update(skip_locked=True, of=("self",))
        ids = list(queryset.values_list("pk", flat=True)[:page])
        if ids:
            queryset.model.objects.filter(pk__in=ids).update(**{field: until})
    return ids
