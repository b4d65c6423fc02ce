"""ForemanBeat and Notification move to the foreman app (foreman 0001_initial).

State only: their tables, rows, indexes and constraints stay as they are, and the
foreman app's models name the same tables (`db_table`).
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("common", "0003_foreman"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="ForemanBeat"),
                migrations.DeleteModel(name="Notification"),
            ],
            database_operations=[],
        ),
    ]
