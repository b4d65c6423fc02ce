import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("common", "0009_sequencing_runs"),
        ("foreman", "0003_operator_actions"),
    ]

    operations = [
        migrations.CreateModel(
            name="SurveySchedule",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=64, unique=True)),
                (
                    "cron",
                    models.CharField(help_text="as configured when it last ran", max_length=255),
                ),
                (
                    "first_seen_at",
                    models.DateTimeField(
                        default=django.utils.timezone.now,
                        help_text="when a Foreman first saw it: due times count from here",
                    ),
                ),
                ("last_due_at", models.DateTimeField(blank=True, null=True)),
                ("last_started_at", models.DateTimeField(blank=True, null=True)),
                ("last_error", models.TextField(blank=True, default="")),
                (
                    "last_job",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="common.surveyjob",
                    ),
                ),
            ],
            options={"ordering": ["name"]},
        ),
    ]
