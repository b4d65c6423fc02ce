"""Model instances from the rows of a statement written by hand, for the hot
paths that run one: a worker's or an engine's claim, and the engine API's token,
files and completion (each request of an engine runs two or three).

Django's `Manager.raw()` works out, on every call, which column is which field
and which converters each needs; on a one-row statement that costs as much as
running it (bench/engine_api.py). `model_rows` works it out once per model and
set of columns, then does what `raw()` does with it: the same converters, the
same instances, columns that are no field set as attributes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from typing import TypeVar

from django.db import connections, models

M = TypeVar("M", bound=models.Model)


@cache
def row_loader(
    model: type[M], columns: tuple[str, ...], alias: str
) -> Callable[[tuple, object], M]:
    """A function turning one row of `columns` (read through the connection
    `alias`) into an instance of `model`, as `raw()` would."""
    connection = connections[alias]
    by_column = {field.column: field for field in model._meta.concrete_fields}
    if model._meta.pk.column not in columns:
        raise ValueError(f"a statement read as {model.__name__} rows must return its primary key")
    # Values in the model's field order, as Model.from_db expects them.
    present = [f for f in model._meta.concrete_fields if f.column in columns]
    names = [f.attname for f in present]
    positions = [columns.index(f.column) for f in present]
    extra = [(column, i) for i, column in enumerate(columns) if column not in by_column]
    converters = []
    for i, column in enumerate(columns):
        field = by_column.get(column)
        if field is None:
            continue
        col = field.get_col(model._meta.db_table)
        found = connection.ops.get_db_converters(col) + field.get_db_converters(connection)
        if found:
            converters.append((i, found, col))

    def load(row: tuple, connection) -> M:
        if converters:
            row = list(row)
            for i, functions, col in converters:
                for convert in functions:
                    row[i] = convert(row[i], col, connection)
        instance = model.from_db(alias, names, [row[i] for i in positions])
        for column, i in extra:
            setattr(instance, column, row[i])
        return instance

    return load


def model_rows(model: type[M], sql: str, params: Sequence, alias: str = "default") -> list[M]:
    """Run `sql` (a SELECT, or a statement with RETURNING, that returns `model`'s
    primary key) and return its rows as instances of `model`."""
    connection = connections[alias]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        columns = tuple(column[0] for column in cursor.description)
        rows = cursor.fetchall()
    if not rows:
        return []
    load = row_loader(model, columns, alias)
    return [load(row, connection) for row in rows]
