"""The dataset_matrix pipeline: a dataset's samples as one gene-by-sample matrix.

Each sample's value (counts or TPM) comes from the Quantification rows of its
runs (salmon_quant's results). A sample sequenced in several runs gets the sum
of its runs' counts, or the mean of their TPMs. Genes are the union of the
samples' genes, sorted; a gene a sample's index did not have is left empty.

The values are read in one query (on PostgreSQL through binary COPY,
processors/pg_copy.py) straight into a matrix with a row per sample, which
becomes an Arrow table without a copy. The matrix is stored as a gzip TSV
(`gene_id` then one column per sample accession; values in shortest
round-trip notation, so they read back exactly as stored) and as Parquet (one
float64 column per sample), both streamed into permanent storage as they are
made, side by side (processors/dataset_files.py).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from common.models import Dataset, DatasetValue, GeneSet, ProcessorJob, Quantification
from common.storage import StorageError, permanent_storage
from processors.dataset_files import ChunkPipe, TsvStream, store_from_pipe, write_parquet
from processors.index_tools import available_cpus
from processors.pg_copy import CopyFormatError, copy_rows
from processors.pipeline import ProcessorContext, add_stored_result, result_key, run_processor
from runner.pipeline import JobError

logger = logging.getLogger(__name__)

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
    """Gather the samples' quantifications into one matrix: a row of genes per
    sample, so each quantification's values land in one contiguous stretch
    (one copy, straight from the database's buffer). The gene sets are read
    first, so the matrix is allocated once and filled as the values stream in."""
    # The writers' libraries load while the database sends the values.
    threading.Thread(target=import_writers, name="import-writers", daemon=True).start()
    dataset = context["dataset"]
    field = "count_values" if dataset.value == DatasetValue.COUNTS else "tpm_values"
    accessions = sorted(dataset.samples.values_list("accession", flat=True))
    quantifications = Quantification.objects.filter(batch__samples__datasets=dataset).order_by()
    gene_sets = dict(
        GeneSet.objects.filter(pk__in=quantifications.values("gene_set_id")).values_list(
            "pk", "gene_ids"
        )
    )
    genes = sorted({gene for ids in gene_sets.values() for gene in ids})
    matrix = SampleMatrix(accessions, genes, gene_sets, mean=field == "tpm_values")
    read_values(quantifications.values_list("batch__samples__accession", "gene_set_id", field),
                matrix.place)  # fmt: skip
    matrix.finish()
    context.update(genes=genes, sample_accessions=accessions, matrix=matrix.values)
    context["parameters"].update(value=dataset.value, samples=len(accessions), genes=len(genes))
    return context


def import_writers() -> None:
    """polars and pyarrow take a few tenths of a second to import."""
    import isal.igzip  # noqa: F401
    import polars  # noqa: F401
    import pyarrow.parquet  # noqa: F401


class SampleMatrix:
    """Samples' values by gene, a row per sample (NaN where a sample's index
    lacks a gene). A sample sequenced in several runs gets the sum of its
    runs' values, or their mean (`mean`, for TPM): its runs are set aside as
    they come and combined in `finish`."""

    def __init__(
        self, accessions: list[str], genes: list[str], gene_sets: dict[int, list[str]], mean: bool
    ):
        self.row_of = {accession: row for row, accession in enumerate(accessions)}
        # Not filled: every row is written whole (the first touch of its pages
        # happens as the values arrive, while the database sends the next).
        self.values = np.empty((len(accessions), len(genes)))
        self.mean = mean
        self.runs = [0] * len(accessions)
        self.first_set: dict[int, int] = {}  # row → the gene set of its first run
        self.several: dict[int, list[tuple[int, np.ndarray]]] = {}
        gene_array = np.array(genes)
        self.where = {
            pk: np.searchsorted(gene_array, np.array(ids, dtype=gene_array.dtype))
            for pk, ids in gene_sets.items()
        }
        # A gene set that is every gene in order is copied whole (the usual case:
        # one index); one listing a gene twice is summed like several runs.
        self.whole = {pk for pk, ids in gene_sets.items() if ids == genes}
        self.unique = {pk for pk, ids in gene_sets.items() if len(set(ids)) == len(ids)}

    def place(self, accession: str, gene_set_id: int, data) -> None:
        row = self.row_of.get(accession)
        if row is None:  # the run is also another sample's, outside the dataset
            return
        where = self.where.get(gene_set_id)
        if where is None:
            raise JobError(
                f"a quantification of {accession} was replaced while the dataset was read; "
                "the next attempt reads it again"
            )
        if len(data) != 8 * len(where):
            raise JobError(
                f"a quantification of {accession} has {len(data)} bytes of values for "
                f"{len(where)} genes (8 bytes a gene)",
                no_retry=True,
            )
        values = np.frombuffer(data, dtype="<f8")
        self.runs[row] += 1
        if self.runs[row] == 1 and gene_set_id in self.unique:
            self.first_set[row] = gene_set_id
            if gene_set_id in self.whole:
                self.values[row] = values
            else:
                self.values[row] = np.nan
                self.values[row, where] = values
            return
        runs = self.several.setdefault(row, [])
        if row in self.first_set:  # its first run was placed directly: take it back
            first = self.first_set.pop(row)
            runs.append((first, self.values[row, self.where[first]].copy()))
        runs.append((gene_set_id, values.copy()))

    def finish(self) -> None:
        """Combine the runs set aside, and check that every sample has one."""
        missing = [accession for accession, row in self.row_of.items() if not self.runs[row]]
        if missing:
            raise JobError(
                f"{len(missing)} of the dataset's samples have no quantification any more: "
                + ", ".join(missing[:10]),
                no_retry=True,
            )
        genes = self.values.shape[1]
        for row, runs in self.several.items():
            total = np.zeros(genes)
            seen = np.zeros(genes, dtype=bool)
            for gene_set_id, values in runs:
                where = self.where[gene_set_id]
                np.add.at(total, where, values)
                seen[where] = True
            if self.mean:
                total /= len(runs)
            self.values[row] = np.where(seen, total, np.nan)


def read_values(rows, place) -> None:
    """Hand `place(accession, gene set id, value bytes)` each row of `rows` (a
    values_list of a sample accession, a gene set id and a binary field): on
    PostgreSQL through binary COPY (the arrays arrive as they are stored, not
    as hex text), elsewhere through the queryset."""
    from django.db import connections

    if connections[rows.db].vendor != "postgresql":
        for accession, gene_set_id, data in rows.iterator(chunk_size=100):
            place(accession, gene_set_id, data)
        return

    def on_row(fields) -> None:
        if len(fields) != 3 or None in fields:
            raise JobError("a quantification row read from PostgreSQL lacks a field; retrying")
        accession, gene_set_id, data = fields
        place(bytes(accession).decode(), int.from_bytes(gene_set_id, "big", signed=True), data)

    try:
        copy_rows(rows, on_row)
    except CopyFormatError as error:
        raise JobError(f"reading the quantifications: {error}; retrying") from None


def as_table(context: DatasetContext) -> DatasetContext:
    """The matrix as an Arrow table (empty cells are nulls), which both writers
    use: each sample's row of the matrix becomes its column without a copy."""
    import pyarrow as pa

    matrix = context.pop("matrix")
    arrays = [pa.array(context["genes"], type=pa.string())]
    arrays += [pa.array(matrix[row], from_pandas=True) for row in range(matrix.shape[0])]
    context["table"] = pa.Table.from_arrays(arrays, ["gene_id", *context["sample_accessions"]])
    return context


def store_files(context: DatasetContext) -> DatasetContext:
    """Store the gzip TSV and the Parquet file in permanent storage as they are
    made: the TSV streams into `put_stream` here, while one thread beside
    writes the Parquet file into a pipe that another stores. What one of them
    stored is removed if the other fails; once both are stored they are the
    job's results (recorded, or removed, by the upload step)."""
    job, storage = context["job"], permanent_storage()
    table = context["table"]
    keys = [result_key(job, TSV_NAME), result_key(job, PARQUET_NAME)]
    header = ["gene_id", *context["sample_accessions"]]
    pipe = ChunkPipe()
    try:
        with ThreadPoolExecutor(2, thread_name_prefix="parquet") as beside:
            writing = beside.submit(write_parquet, table, pipe)
            storing = beside.submit(store_from_pipe, storage, pipe, keys[1])
            try:
                with contextlib.closing(TsvStream(table, header, available_cpus())) as stream:
                    tsv = storage.put_stream(stream, keys[0])
                writing.result()
                parquet = storing.result()
            finally:
                pipe.cancel()  # a side still waiting on the other stops
    except BaseException:
        for key in keys:
            try:
                storage.delete(key)
            except StorageError:
                logger.warning("could not remove %s after a failed dataset build", key)
        raise
    add_stored_result(context, tsv, "tsv.gz")
    add_stored_result(context, parquet, "parquet")
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
    with collector_paused():
        return run_processor(
            job,
            [load_dataset, build_matrix, as_table, store_files],
            fetch_inputs=False,
        )


@contextlib.contextmanager
def collector_paused():
    """Python's cyclic garbage collector off for the build. The build makes
    few objects and no garbage worth a collection, but importing polars and
    pyarrow makes enough long-lived ones to set off a full collection, which
    walks every object Django and the libraries hold (0.1 to 0.3 s) and frees
    nothing. What the build leaves is collected once it is back on."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()
