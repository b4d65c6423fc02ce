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
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from common.models import Dataset, DatasetValue, GeneSet, ProcessorJob, Quantification
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
    """Gather the samples' quantifications into one matrix: a row of genes per
    sample, so each quantification's values land in one contiguous stretch
    (one copy, straight from the database's buffer). The gene sets are read
    first, so the matrix is allocated once and filled as the values stream in."""
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


class SampleMatrix:
    """Samples' values by gene, a row per sample (NaN where a sample's index
    lacks a gene). A sample sequenced in several runs gets the sum of its
    runs' values, or their mean (`mean`, for TPM): its runs are set aside as
    they come and combined in `finish`."""

    def __init__(
        self, accessions: list[str], genes: list[str], gene_sets: dict[int, list[str]], mean: bool
    ):
        self.row_of = {accession: row for row, accession in enumerate(accessions)}
        self.values = np.full((len(accessions), len(genes)), np.nan)
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
    values_list of a sample accession, a gene set id and a binary field). On
    PostgreSQL through `COPY … TO STDOUT (FORMAT binary)`: the arrays arrive as
    raw bytes, not hex text to decode, which reads them three to four times as
    fast as a SELECT."""
    from django.db import connections

    connection = connections[rows.db]
    if connection.vendor != "postgresql":
        for accession, gene_set_id, data in rows.iterator(chunk_size=100):
            place(accession, gene_set_id, data)
        return
    sql, params = rows.query.sql_with_params()
    with connection.cursor() as cursor:
        query = cursor.mogrify(sql, params).decode()
        sink = CopyRows(lambda fields: place(
            bytes(fields[0]).decode(), int.from_bytes(fields[1], "big", signed=True), fields[2]
        ))  # fmt: skip
        cursor.copy_expert(f"COPY ({query}) TO STDOUT (FORMAT binary)", sink, size=1 << 20)
    if not sink.ended:
        raise JobError("PostgreSQL's copy of the quantifications ended early; retrying")


COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"


class CopyRows:
    """A file for psycopg2's `copy_expert` that parses PostgreSQL's binary COPY
    format as it arrives (psycopg2 writes a row at a time) and hands each row's
    fields, memoryviews valid during the call, to `on_row`. A NULL field is None."""

    def __init__(self, on_row):
        self.on_row = on_row
        self.pending = b""  # the start of a row not yet complete
        self.started = self.ended = False

    def write(self, data: bytes) -> int:
        view = memoryview(self.pending + data if self.pending else data)
        at = 0
        if not self.started:
            if len(view) < 19:
                self.pending = bytes(view)
                return len(data)
            if view[:11] != COPY_SIGNATURE:
                raise JobError("PostgreSQL's COPY output is not its binary format")
            at = 19 + int.from_bytes(view[15:19], "big")
            self.started = True
        while not self.ended and (found := self.row(view, at)) is not None:
            fields, at = found
            if fields is not None:
                self.on_row(fields)
        self.pending = bytes(view[at:])
        return len(data)

    def row(self, view: memoryview, at: int) -> tuple[list | None, int] | None:
        """The fields of the row at `at` and where the next row starts (no
        fields after the last row); None if the row is not all here yet."""
        if len(view) - at < 2:
            return None
        count = int.from_bytes(view[at : at + 2], "big", signed=True)
        at += 2
        if count == -1:
            self.ended = True
            return None, at
        fields = []
        for _ in range(count):
            if len(view) - at < 4:
                return None
            size = int.from_bytes(view[at : at + 4], "big", signed=True)
            at += 4
            if size < 0:
                fields.append(None)
                continue
            if len(view) - at < size:
                return None
            fields.append(view[at : at + size])
            at += size
        return fields, at


def as_table(context: DatasetContext) -> DatasetContext:
    """The matrix as an Arrow table (empty cells are nulls), which both writers
    use: each sample's row of the matrix becomes its column without a copy."""
    import pyarrow as pa

    matrix = context.pop("matrix")
    arrays = [pa.array(context["genes"], type=pa.string())]
    arrays += [pa.array(matrix[row], from_pandas=True) for row in range(matrix.shape[0])]
    context["table"] = pa.Table.from_arrays(arrays, ["gene_id", *context["sample_accessions"]])
    return context


TSV_SLICE_ROWS = 2000  # genes per gzip member: one formats while those before compress


def write_files(context: DatasetContext) -> DatasetContext:
    """The gzip TSV and the Parquet file at once: Parquet's writer (one thread,
    mostly zstd) runs beside the TSV's formatting and compression."""
    tsv, parquet = context["work_dir"] / TSV_NAME, context["work_dir"] / PARQUET_NAME
    with ThreadPoolExecutor(1) as beside:
        writing = beside.submit(write_parquet, context["table"], parquet)
        write_tsv(context["table"], context["sample_accessions"], tsv)
        writing.result()
    add_computed_file(context, tsv, "tsv.gz")
    add_computed_file(context, parquet, "parquet")
    return context


def write_tsv(table, accessions: list[str], path: Path) -> None:
    """gzip TSV: polars formats each slice of genes (in Rust, floats in
    shortest round-trip form: three times as fast as Arrow's CSV writer) while
    isal compresses the slices before on threads of their own. The file is a
    series of gzip members, which every gzip reader reads as one stream. The
    header is written here, so the frame's column names are positional (an
    accession may be anything, even `gene_id`)."""
    import polars as pl
    from isal import igzip

    frame = pl.from_arrow(table.rename_columns([f"c{n}" for n in range(table.num_columns)]))
    header = "\t".join(["gene_id", *accessions]) + "\n"
    in_flight = available_cpus()
    with open(path, "wb") as out, ThreadPoolExecutor(in_flight) as compressors:
        out.write(igzip.compress(header.encode(), compresslevel=2))
        members: deque = deque()
        for start in range(0, frame.height, TSV_SLICE_ROWS):
            text = io.BytesIO()
            frame.slice(start, TSV_SLICE_ROWS).write_csv(
                text, include_header=False, separator="\t", line_terminator="\n",
                quote_style="never", null_value="",
            )  # fmt: skip
            members.append(compressors.submit(igzip.compress, text.getbuffer(), compresslevel=2))
            while len(members) > in_flight:
                out.write(members.popleft().result())
        while members:
            out.write(members.popleft().result())


def write_parquet(table, path: Path) -> None:
    """One float64 column per sample, zstd (a third the size of uncompressed
    floats for a fifth more time than lz4's); dictionaries do not help floats,
    and cost half the writing time."""
    import pyarrow.parquet as pq

    pq.write_table(
        table, path, compression="zstd", use_dictionary=["gene_id"], write_statistics=False
    )


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
        [load_dataset, build_matrix, as_table, write_files],
        fetch_inputs=False,
    )
