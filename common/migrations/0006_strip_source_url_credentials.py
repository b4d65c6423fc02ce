"""Credentials a mirror URL carried before they were stripped at survey time
leave the rows that hold them: OriginalFile.source_url and each provenance's
inputs. Where stripping would make a URL another row already has, the password
is masked instead (the unique column keeps both rows apart)."""

from django.db import migrations

from common.secrets import redact, strip_credentials


def strip_stored_credentials(apps, schema_editor):
    OriginalFile = apps.get_model("common", "OriginalFile")
    Provenance = apps.get_model("common", "Provenance")
    for original in OriginalFile.objects.filter(source_url__contains="@").iterator():
        clean = strip_credentials(original.source_url)
        if clean == original.source_url:
            continue
        if OriginalFile.objects.filter(source_url=clean).exists():
            clean = redact(original.source_url)
        original.source_url = clean
        original.save(update_fields=["source_url"])
    for provenance in Provenance.objects.iterator():
        inputs = provenance.inputs if isinstance(provenance.inputs, list) else []
        changed = False
        for item in inputs:
            url = item.get("source_url") if isinstance(item, dict) else None
            if isinstance(url, str) and strip_credentials(url) != url:
                item["source_url"] = strip_credentials(url)
                changed = True
        if changed:
            provenance.save(update_fields=["inputs"])


class Migration(migrations.Migration):
    dependencies = [
        ("common", "0005_one_transcriptome_index_per_batch"),
    ]

    operations = [
        migrations.RunPython(strip_stored_credentials, migrations.RunPython.noop),
    ]
