"""Quantifications store their values as float64 arrays and their genes once per
gene set, instead of three JSON lists a row; existing rows are converted."""

import hashlib

import django.db.models.deletion
import numpy as np
from django.db import migrations, models


def to_arrays(apps, schema_editor):
    GeneSet = apps.get_model("common", "GeneSet")
    Quantification = apps.get_model("common", "Quantification")
    sets: dict[str, object] = {}
    for row in Quantification.objects.all().iterator():
        genes = list(row.gene_ids)
        digest = hashlib.sha256("\n".join(genes).encode()).hexdigest()
        if digest not in sets:
            sets[digest], _ = GeneSet.objects.get_or_create(
                sha256=digest, defaults={"gene_ids": genes, "size": len(genes)}
            )
        row.gene_set = sets[digest]
        row.count_values = np.asarray(row.counts, dtype="<f8").tobytes()
        row.tpm_values = np.asarray(row.tpm, dtype="<f8").tobytes()
        row.save(update_fields=["gene_set", "count_values", "tpm_values"])


def to_lists(apps, schema_editor):
    Quantification = apps.get_model("common", "Quantification")
    for row in Quantification.objects.select_related("gene_set").iterator():
        row.gene_ids = row.gene_set.gene_ids
        row.counts = np.frombuffer(bytes(row.count_values), dtype="<f8").tolist()
        row.tpm = np.frombuffer(bytes(row.tpm_values), dtype="<f8").tolist()
        row.save(update_fields=["gene_ids", "counts", "tpm"])


class Migration(migrations.Migration):
    dependencies = [("common", "0010_datasets")]

    operations = [
        migrations.CreateModel(
            name="GeneSet",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "sha256",
                    models.CharField(
                        help_text="of the ids, one per line", max_length=64, unique=True
                    ),
                ),
                ("gene_ids", models.JSONField(default=list)),
                ("size", models.PositiveIntegerField()),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
        ),
        migrations.AddField(
            model_name="quantification",
            name="gene_set",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="quantifications",
                to="common.geneset",
            ),
        ),
        migrations.AddField(
            model_name="quantification",
            name="count_values",
            field=models.BinaryField(null=True, help_text="float64 little-endian, one per gene"),
        ),
        migrations.AddField(
            model_name="quantification",
            name="tpm_values",
            field=models.BinaryField(null=True, help_text="float64 little-endian, one per gene"),
        ),
        migrations.RunPython(to_arrays, to_lists),
        migrations.RemoveField(model_name="quantification", name="gene_ids"),
        migrations.RemoveField(model_name="quantification", name="counts"),
        migrations.RemoveField(model_name="quantification", name="tpm"),
        migrations.AlterField(
            model_name="quantification",
            name="gene_set",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="quantifications",
                to="common.geneset",
            ),
        ),
        migrations.AlterField(
            model_name="quantification",
            name="count_values",
            field=models.BinaryField(help_text="float64 little-endian, one per gene"),
        ),
        migrations.AlterField(
            model_name="quantification",
            name="tpm_values",
            field=models.BinaryField(help_text="float64 little-endian, one per gene"),
        ),
    ]
