"""`model_rows`: a hand-written statement's rows as model instances, the same
ones `Manager.raw()` gives, on every database the suite runs on."""

from __future__ import annotations

import pytest
from django.db import connection

from common.models import Batch, ProcessorJob, SurveyJob
from common.models.sql_rows import model_rows

pytestmark = pytest.mark.django_db


def table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def test_rows_are_the_instances_raw_gives():
    first = Batch.objects.create(
        source="ensembl", accession="A", variant="31", pipeline_required="salmon_index",
        metadata={"nested": [1, 2], "name": "ä"},
    )  # fmt: skip
    Batch.objects.create(source="ensembl", accession="B", pipeline_required="salmon_index")
    sql = f"SELECT * FROM {table(Batch)} ORDER BY id"
    rows = model_rows(Batch, sql, [])
    raw = list(Batch.objects.raw(sql))
    assert [r.pk for r in rows] == [r.pk for r in raw] == [first.pk, first.pk + 1]
    for mine, theirs in zip(rows, raw, strict=True):
        for field in Batch._meta.concrete_fields:
            assert getattr(mine, field.attname) == getattr(theirs, field.attname), field.name
    # The JSON column went through the field's converter, as raw() does it.
    assert rows[0].metadata == {"nested": [1, 2], "name": "ä"}
    assert not rows[0]._state.adding and rows[0]._state.db == "default"


def test_columns_in_any_order_fill_their_own_fields():
    job = SurveyJob.objects.create(source="ensembl", parameters={"division": "plants"})
    sql = f"SELECT parameters, source, id FROM {table(SurveyJob)} WHERE id = %s"
    (row,) = model_rows(SurveyJob, sql, [job.pk])
    assert (row.pk, row.source, row.parameters) == (job.pk, "ensembl", {"division": "plants"})
    # A field not selected is deferred, and loaded when asked for.
    assert "worker_version" in row.get_deferred_fields()
    assert row.worker_version == job.worker_version


def test_a_column_that_is_no_field_becomes_an_attribute():
    job = ProcessorJob.objects.create(pipeline="basecalling")
    sql = f"SELECT id, 41 + 1 AS answer FROM {table(ProcessorJob)} WHERE id = %s"
    (row,) = model_rows(ProcessorJob, sql, [job.pk])
    assert (row.pk, row.answer) == (job.pk, 42)


def test_no_row_is_an_empty_list_and_no_primary_key_an_error():
    assert model_rows(ProcessorJob, f"SELECT * FROM {table(ProcessorJob)} WHERE id = -1", []) == []
    ProcessorJob.objects.create(pipeline="basecalling")
    with pytest.raises(ValueError, match="primary key"):
        model_rows(ProcessorJob, f"SELECT pipeline FROM {table(ProcessorJob)}", [])
