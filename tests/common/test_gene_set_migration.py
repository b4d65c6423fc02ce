"""common 0011: quantifications stored as three JSON lists a row become float64
arrays with their genes in a shared gene set; the values read back the same."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from common.models import GeneSet, Quantification

BEFORE = [("common", "0010_datasets")]


def migrate(targets=None) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets or executor.loader.graph.leaf_nodes())
    executor.loader.build_graph()
    return executor


@pytest.mark.django_db(transaction=True)  # SQLite alters schemas only outside a transaction
def test_json_lists_become_arrays_sharing_one_gene_set():
    try:
        old = migrate(BEFORE).loader.project_state(BEFORE).apps
        organism = old.get_model("common", "Organism").objects.create(scientific_name="X y")
        job = old.get_model("common", "ProcessorJob").objects.create(pipeline="salmon_quant")
        provenance = old.get_model("common", "Provenance").objects.create(
            processor_job=job, processor_name="i", processor_version="1",
            started_at=timezone.now(), ended_at=timezone.now(),
        )  # fmt: skip
        computed = old.get_model("common", "ComputedFile").objects.create(
            key="k", filename="i", format="tar.gz", size=1, sha256="0" * 64,
            processor_job=job, provenance=provenance,
        )  # fmt: skip
        Batch = old.get_model("common", "Batch")
        index_batch = Batch.objects.create(source="ensembl", accession="x", pipeline_required="s")
        index = old.get_model("common", "TranscriptomeIndex").objects.create(
            organism=organism, batch=index_batch, length="long", k=31, source_release="1",
            assembly="a", salmon_version="1", computed_file=computed,
        )  # fmt: skip
        for number, (counts, tpm) in enumerate(
            [([1.5, 2.25], [1e5, 9e5]), ([0.0, 3.0], [0.0, 1e6])]
        ):
            batch = Batch.objects.create(
                source="ena", accession=f"SRR{number}", pipeline_required="s"
            )
            old.get_model("common", "Quantification").objects.create(
                batch=batch, processor_job=job, transcriptome_index=index, mapping_rate=0.9,
                reads_processed=10, gene_ids=["g1", "g2"], counts=counts, tpm=tpm,
            )  # fmt: skip
    finally:
        migrate()
    rows = Quantification.objects.select_related("gene_set").order_by("batch__accession")
    assert [(q.gene_ids, q.counts, q.tpm) for q in rows] == [
        (["g1", "g2"], [1.5, 2.25], [1e5, 9e5]),
        (["g1", "g2"], [0.0, 3.0], [0.0, 1e6]),
    ]
    assert GeneSet.objects.get().size == 2


def test_a_quantification_needs_one_value_of_each_per_gene():
    with pytest.raises(ValueError, match="2 genes, 1 counts and 2 TPMs"):
        Quantification.of_genes(["g1", "g2"], counts=[1.0], tpm=[1.0, 2.0])
