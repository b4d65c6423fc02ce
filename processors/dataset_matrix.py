"""The dataset_matrix pipeline: a dataset's samples as one gene-by-sample matrix.

Each sample's value (counts or TPM) comes from the Quantification rows of its
runs (salmon_quant's results). A sample sequenced in several runs gets the sum
of its runs' counts, or the mean of their TPMs. Genes are the union of the
samples' genes, sorted; a gene a sample's index did not have is left empty.

The matrix is written as a gzip TSV (`gene_id` then one column per sample
accession; values in Python's shortest round-trip notation, so they read back
exactly as stored) and as Parquet (one float64 column per sample).
"""

from __future__ import annotations

import gzip
from collections import defaultdict

import numpy as np

from common.models import Dataset, DatasetValue, ProcessorJob, Quantification
from processors.pipeline import ProcessorContext, add_computed_file, run_processor
from runner.pipeline import JobError

TSV_NAME = "dataset.tsv.gz"
PARQUET_NAME = "dataset.parquet"


class DatasetContext(ProcessorContext, total=False):
    dataset: Dataset
    genes: list[str]
    sample_accessions: list[str]
    matrix: np.ndarray


def load_dataset(context: DatasetContext) -> DatasetContext:
    batch = context["batches"][0]
    try:
        context["dataset"] = Dataset.objects.select_related("organism").get(batch=batch)
    except Dataset.DoesNotExist:
        raise JobError(f"batch {batch.pk} belongs to no dataset", no_retry=True) from None
    context["record_results"] = link_files
    return context


def build_matrix(context: DatasetContext) -> DatasetContext:
    """Gather the samples' quantifications into one matrix (a row per gene, a column per sample)."""
    dataset = context["dataset"]
    field = "counts" if dataset.value == DatasetValue.COUNTS else "tpm"
    accessions = sorted(dataset.samples.values_list("accession", flat=True))
    per_sample: dict[str, list[tuple[list[str], list[float]]]] = defaultdict(list)
    rows = Quantification.objects.filter(batch__samples__datasets=dataset).values_list(
        "batch__samples__accession", "gene_ids", field
    )
    for accession, gene_ids, values in rows.iterator():
        if accession in accessions and len(gene_ids) == len(values):
            per_sample[accession].append((gene_ids, values))
    missing = [accession for accession in accessions if not per_sample[accession]]
    if missing:
        raise JobError(
            f"{len(missing)} of the dataset's samples have no quantification any more: "
            + ", ".join(missing[:10]),
            no_retry=True,
        )
    genes = sorted({gene for runs in per_sample.values() for ids, _ in runs for gene in ids})
    matrix = np.full((len(genes), len(accessions)), np.nan)
    rows_of: dict[int, np.ndarray] = {}  # one index lookup per distinct gene list
    gene_array = np.array(genes)
    for column, accession in enumerate(accessions):
        runs = per_sample[accession]
        total = np.zeros(len(genes))
        seen = np.zeros(len(genes), dtype=bool)
        for gene_ids, values in runs:
            key = hash(tuple(gene_ids))
            if key not in rows_of:
                rows_of[key] = np.searchsorted(gene_array, np.array(gene_ids))
            where = rows_of[key]
            np.add.at(total, where, np.asarray(values, dtype=float))
            seen[where] = True
        if field == "tpm":
            total /= len(runs)
        matrix[seen, column] = total[seen]
    context.update(genes=genes, sample_accessions=accessions, matrix=matrix)
    context["parameters"].update(value=dataset.value, samples=len(accessions), genes=len(genes))
    return context


def write_tsv(context: DatasetContext) -> DatasetContext:
    path = context["work_dir"] / TSV_NAME
    matrix = context["matrix"]
    with gzip.open(path, "wt", compresslevel=6, newline="\n") as out:
        out.write("\t".join(["gene_id", *context["sample_accessions"]]) + "\n")
        for gene, row in zip(context["genes"], matrix.tolist(), strict=True):
            cells = ("" if value != value else repr(value) for value in row)  # NaN → empty
            out.write(gene + "\t" + "\t".join(cells) + "\n")
    add_computed_file(context, path, "tsv.gz")
    return context


def write_parquet(context: DatasetContext) -> DatasetContext:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {"gene_id": pa.array(context["genes"], type=pa.string())}
    for column, accession in enumerate(context["sample_accessions"]):
        columns[accession] = pa.array(context["matrix"][:, column], from_pandas=True)
    path = context["work_dir"] / PARQUET_NAME
    pq.write_table(pa.table(columns), path, compression="zstd")
    add_computed_file(context, path, "parquet")
    return context


def link_files(context: DatasetContext, files) -> None:
    """Inside the results' transaction: the dataset points at its files."""
    dataset = context["dataset"]
    by_name = {computed.filename: computed for computed in files}
    dataset.matrix_file = by_name.get(TSV_NAME)
    dataset.parquet_file = by_name.get(PARQUET_NAME)
    dataset.genes = len(context["genes"])
    dataset.save(update_fields=["matrix_file", "parquet_file", "genes"])


def build_dataset(job: ProcessorJob) -> DatasetContext:
    """Its inputs are rows in the database: nothing is fetched."""
    return run_processor(
        job,
        [load_dataset, build_matrix, write_tsv, write_parquet],
        fetch_inputs=False,
    )
