"""ForemanBeat and Notification moved from `common` to `foreman` (common 0004,
foreman 0001): a database migrated before the move keeps its rows, constraints
and content types."""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from foreman.models import ForemanBeat, Notification

BEFORE_THE_MOVE = [("common", "0003_foreman")]


def migrate(targets=None) -> MigrationExecutor:
    """Migrate the test database to `targets` (default: everything)."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets or executor.loader.graph.leaf_nodes())
    executor.loader.build_graph()
    return executor


@pytest.mark.django_db(transaction=True)  # SQLite alters schemas only outside a transaction
def test_rows_saved_before_the_move_are_read_after_it():
    content_type = ContentType.objects.get_for_model(Notification)
    try:
        old = migrate(BEFORE_THE_MOVE).loader.project_state(BEFORE_THE_MOVE).apps
        old_notification = old.get_model("common", "Notification")
        old_notification.objects.create(
            job_kind="processor", job_id=42, subject="gave up on processor:42", body="out of disk"
        )
        old.get_model("common", "ForemanBeat").objects.create(name="host:7", passes=5)
        moved_back = ContentType.objects.filter(pk=content_type.pk).values_list("app_label")
        assert moved_back.get() == ("common",)
    finally:
        migrate()
    ContentType.objects.clear_cache()

    notification = Notification.objects.get(job_kind="processor", job_id=42)
    assert (notification.subject, notification.body) == ("gave up on processor:42", "out of disk")
    assert Notification.objects.filter(delivered_at__isnull=True).count() == 1
    beat = ForemanBeat.objects.get(name="host:7")
    assert beat.passes == 5 and ForemanBeat.latest() == beat
    assert ContentType.objects.get_for_model(Notification).pk == content_type.pk
    with pytest.raises(IntegrityError), transaction.atomic():  # notification_once_per_job
        Notification.objects.create(job_kind="processor", job_id=42, subject="again", body="")
