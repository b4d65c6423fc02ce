from django.db import migrations, models


def keep_the_newest_index_of_each_batch(apps, schema_editor):
    """A worker killed between storing an index and ending its job could leave a
    second index for one batch; keep the newest (its older file stays, with its job)."""
    TranscriptomeIndex = apps.get_model("common", "TranscriptomeIndex")
    seen = set()
    for index in TranscriptomeIndex.objects.order_by("batch_id", "-created_at", "-id"):
        if index.batch_id in seen:
            index.delete()
        seen.add(index.batch_id)


class Migration(migrations.Migration):
    dependencies = [
        ("common", "0004_foreman_models_move_to_foreman"),
    ]

    operations = [
        migrations.RunPython(keep_the_newest_index_of_each_batch, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="transcriptomeindex",
            constraint=models.UniqueConstraint(
                fields=("batch",), name="one_transcriptome_index_per_batch"
            ),
        ),
    ]
