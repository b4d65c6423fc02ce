"""ForemanBeat and Notification, moved here from common (common 0004).

State only: the tables common 0003 created (`common_foremanbeat`,
`common_notification`) keep their rows, indexes and constraints. The models'
content types move too, so permissions granted on them still hold.
"""

import django.utils.timezone
from django.db import migrations, models

MOVED = ["foremanbeat", "notification"]


def move_content_types(apps, schema_editor, old="common", new="foreman"):
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    if not ContentType.objects.using(db).filter(app_label=new, model__in=MOVED).exists():
        ContentType.objects.using(db).filter(app_label=old, model__in=MOVED).update(app_label=new)


def move_content_types_back(apps, schema_editor):
    move_content_types(apps, schema_editor, old="foreman", new="common")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("common", "0004_foreman_models_move_to_foreman"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ForemanBeat",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "name",
                            models.CharField(
                                help_text="host:pid of the Foreman", max_length=255, unique=True
                            ),
                        ),
                        ("started_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("beat_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("passes", models.PositiveBigIntegerField(default=0)),
                        (
                            "last_pass_s",
                            models.FloatField(default=0.0, help_text="how long the last pass took"),
                        ),
                        (
                            "last_pass",
                            models.JSONField(
                                blank=True, default=dict, help_text="what the last pass did"
                            ),
                        ),
                    ],
                    options={
                        "db_table": "common_foremanbeat",
                        "ordering": ["-beat_at"],
                    },
                ),
                migrations.CreateModel(
                    name="Notification",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "job_kind",
                            models.CharField(
                                choices=[
                                    ("survey", "survey"),
                                    ("downloader", "downloader"),
                                    ("processor", "processor"),
                                ],
                                max_length=16,
                            ),
                        ),
                        ("job_id", models.BigIntegerField()),
                        ("subject", models.CharField(max_length=255)),
                        ("body", models.TextField()),
                        (
                            "payload",
                            models.JSONField(default=dict, help_text="what the webhook receives"),
                        ),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("email_sent_at", models.DateTimeField(blank=True, null=True)),
                        ("webhook_sent_at", models.DateTimeField(blank=True, null=True)),
                        ("delivered_at", models.DateTimeField(blank=True, null=True)),
                        ("attempts", models.PositiveIntegerField(default=0)),
                        ("last_error", models.TextField(blank=True, default="")),
                    ],
                    options={
                        "db_table": "common_notification",
                        "ordering": ["-id"],
                        "indexes": [
                            models.Index(
                                condition=models.Q(("delivered_at__isnull", True)),
                                fields=["created_at"],
                                name="notification_undelivered",
                            )
                        ],
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("job_kind", "job_id"), name="notification_once_per_job"
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(move_content_types, move_content_types_back, elidable=True),
    ]
