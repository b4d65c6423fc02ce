"""The dataset_matrix pipeline: a dataset's samples as one gene-by-sample matrix.

Each sample's value (counts or TPM) comes from the Quantification rows of its
runs (salmon_quant's results). A sample sequenced in several runs gets the sum
of its runs' counts, or the mean of their TPMs. Genes are the union of the
samples' genes, sorted; a gene a sample's index did not have is left empty.

The matrix is written as a gzip TSV (`gene_id` then one column per sample
accession; values in shortest round-trip notation, so they read back exactly
as stored) and as Parquet (one float64 column per sample).
"""

from __future__ import annotations

import io
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from common.models import Dataset, DatasetValue, GeneSet, ProcessorJob, Quantification
from common.models.samples import unpack_values
from processors.index_tools import available_cpus
from processors.pipeline import ProcessorContext, add_computed_file, run_processor
from runner.pipeline import JobError

TSV_NAME = "dataset.tsv.gz"
PARQUET_NAME = "dataset.parquet"


class DatasetContext(ProcessorContext, total=False):
    dataset: Dataset
    genes: list[str]
    sample_accessions: list[str]
    matrix: np.ndarray
    table: object  # a pyarrow.Table


def load_dataset(context: DatasetContext) -> DatasetContext:
    batch = context["batches"][0]
    try:
        context["dataset"] = Dataset.objects.select_related("organism").get(batch=batch)
    except Dataset.DoesNotExist:
        raise JobError(f"batch {batch.pk} belongs to no dataset", no_retry=True) from None
    context["record_results"] = link_files
    return context


def build_matrix(context: DatasetContext) -> DatasetContext:
    """Gather the samples' quantifications into one matrix (a row per gene, a
    column per sample), reading each gene set's ids once."""
    dataset = context["dataset"]
    field = "count_values" if dataset.value == DatasetValue.COUNTS else "tpm_values"
    accessions = sorted(dataset.samples.values_list("accession", flat=True))
    column_of = {accession: column for column, accession in enumerate(accessions)}
    per_sample: dict[str, list[tuple[int, np.ndarray]]] = defaultdict(list)
    rows = Quantification.objects.filter(batch__samples__datasets=dataset).values_list(
        "batch__samples__accession", "gene_set_id", field
    )
    for accession, gene_set_id, data in rows.iterator(chunk_size=200):
        if accession in column_of:
            per_sample[accession].append((gene_set_id, unpack_values(data)))
    missing = [accession for accession in accessions if not per_sample[accession]]
    if missing:
        raise JobError(
            f"{len(missing)} of the dataset's samples have no quantification any more: "
            + ", ".join(missing[:10]),
            no_retry=True,
        )
    used = {gene_set_id for runs in per_sample.values() for gene_set_id, _ in runs}
    gene_sets = dict(GeneSet.objects.filter(pk__in=used).values_list("pk", "gene_ids"))
    genes = sorted({gene for ids in gene_sets.values() for gene in ids})
    gene_array = np.array(genes)
    rows_of = {pk: np.searchsorted(gene_array, np.array(ids)) for pk, ids in gene_sets.items()}
    matrix = np.full((len(genes), len(accessions)), np.nan)
    for accession, runs in per_sample.items():
        total = np.zeros(len(genes))
        seen = np.zeros(len(genes), dtype=bool)
        for gene_set_id, values in runs:
            where = rows_of[gene_set_id]
            if len(values) != len(where):
                raise JobError(
                    f"a quantification of {accession} has {len(values)} values for "
                    f"{len(where)} genes",
                    no_retry=True,
                )
            np.add.at(total, where, values)
            seen[where] = True
        if field == "tpm_values":
            total /= len(runs)
        column = matrix[:, column_of[accession]]
        column[seen] = total[seen]
    context.update(genes=genes, sample_accessions=accessions, matrix=matrix)
    context["parameters"].update(value=dataset.value, samples=len(accessions), genes=len(genes))
    return context


def as_table(context: DatasetContext) -> DatasetContext:
    """The matrix as an Arrow table (empty cells are nulls), which both writers use."""
    import pyarrow as pa

    columns = {"gene_id": pa.array(context["genes"], type=pa.string())}
    for column, accession in enumerate(context["sample_accessions"]):
        columns[accession] = pa.array(context["matrix"][:, column], from_pandas=True)
    context["table"] = pa.table(columns)
    del context["matrix"]  # the table holds the values now
    return context


TSV_SLICE_ROWS = 5000  # genes per gzip member: each slice is formatted and compressed apart


def _tsv_member(table) -> bytes:
    """One slice of the matrix as TSV lines in a gzip member (Arrow and isal both
    release the GIL, so slices run on every core at once)."""
    import pyarrow.csv as csv
    from isal import igzip

    out = io.BytesIO()
    options = csv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")
    csv.write_csv(table, out, options)
    return igzip.compress(out.getvalue(), compresslevel=2)


def write_tsv(context: DatasetContext) -> DatasetContext:
    """gzip TSV through Arrow's CSV writer (C++; floats in shortest round-trip
    form) and isal, a slice of genes per thread: formatting millions of floats in
    Python would take ten times as long. The file is a series of gzip members,
    which every gzip reader reads as one stream."""
    from isal import igzip

    table = context["table"]
    path = context["work_dir"] / TSV_NAME
    header = "\t".join(["gene_id", *context["sample_accessions"]]) + "\n"
    slices = [
        table.slice(start, TSV_SLICE_ROWS) for start in range(0, table.num_rows, TSV_SLICE_ROWS)
    ]
    with open(path, "wb") as out, ThreadPoolExecutor(available_cpus()) as pool:
        out.write(igzip.compress(header.encode(), compresslevel=2))
        for member in pool.map(_tsv_member, slices):
            out.write(member)
    add_computed_file(context, path, "tsv.gz")
    return context


def write_parquet(context: DatasetContext) -> DatasetContext:
    import pyarrow.parquet as pq

    path = context["work_dir"] / PARQUET_NAME
    # Dictionaries do not help floats, and cost half the writing time.
    pq.write_table(
        context["table"], path, compression="zstd", use_dictionary=["gene_id"],
        write_statistics=False,
    )  # fmt: skip
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
        [load_dataset, build_matrix, as_table, write_tsv, write_parquet],
        fetch_inputs=False,
    )
