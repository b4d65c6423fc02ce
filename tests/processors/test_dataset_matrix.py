"""The dataset_matrix pipeline's parts: PostgreSQL's binary COPY read as it
arrives, the matrix gathered from runs with different gene sets, the gzip TSV
produced as it is read (values read back exactly, whatever they are), the
pipe the Parquet file goes through, and the files a failed or killed build
leaves behind (none)."""

from __future__ import annotations

import gzip
import io
import math
import os
import struct
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from common.models import (
    Batch,
    ComputedFile,
    Dataset,
    DatasetValue,
    JobState,
    ProcessorJob,
    Quantification,
    Sample,
)
from common.storage import permanent_storage
from processors import dataset_files
from processors.dataset_files import ChunkPipe, TsvStream, store_from_pipe, write_parquet
from processors.dataset_matrix import SampleMatrix
from processors.pg_copy import SIGNATURE, CopyFormatError, CopyRows, copy_rows
from runner.lifecycle import execute_job, start_here
from runner.pipeline import JobError
from runner.supervisor import Supervisor
from tests.ena_fixtures import with_index

# --- PostgreSQL's binary COPY --------------------------------------------------


def copy_output(rows: list[list[bytes | None]]) -> bytes:
    """Rows in PostgreSQL's binary COPY format, as its documentation gives it
    (https://www.postgresql.org/docs/current/sql-copy.html, "Binary Format")."""
    out = bytearray(SIGNATURE + struct.pack(">ii", 0, 0))
    for fields in rows:
        out += struct.pack(">h", len(fields))
        for field in fields:
            out += struct.pack(">i", -1) if field is None else struct.pack(">i", len(field)) + field
    return bytes(out + struct.pack(">h", -1))


ROWS = [
    [b"SAMN1", struct.pack(">i", 7), np.arange(5, dtype="<f8").tobytes()],
    [b"SAMN\xc3\xa9", struct.pack(">i", -2), b""],
    [None, struct.pack(">i", 1), bytes(range(256)) * 3],
]


def parse(chunks: list[bytes]) -> tuple[list, CopyRows]:
    seen = []
    sink = CopyRows(lambda fields: seen.append([None if f is None else bytes(f) for f in fields]))
    for chunk in chunks:
        assert sink.write(chunk) == len(chunk)
    return seen, sink


@pytest.mark.parametrize("size", [1, 2, 3, 7, 19, 20, 64, 10_000])
def test_copy_rows_are_parsed_however_the_output_is_split(size):
    data = copy_output(ROWS)
    seen, sink = parse([data[at : at + size] for at in range(0, len(data), size)])
    assert seen == ROWS and sink.ended


def test_copy_output_that_is_not_binary_copy_or_goes_on_is_refused():
    with pytest.raises(CopyFormatError, match="not PostgreSQL's binary format"):
        parse([b"SAMN1\t7\t\\x00\n" * 3])
    with pytest.raises(CopyFormatError, match="after its last row"):
        parse([copy_output(ROWS) + b"\x00\x01"])
    _, sink = parse([copy_output(ROWS)[:-2]])  # the end marker never came
    assert not sink.ended


@pytest.mark.django_db
@pytest.mark.postgres_only
def test_copy_rows_reads_what_a_select_reads(refinery_dirs):
    index = with_index()
    counts = {}
    for number, n_genes in enumerate([3, 0, 1000]):
        batch = Batch.objects.create(
            source="ena", accession=f"SRR{number}", organism=index.organism
        )
        values = np.random.default_rng(number).gamma(0.5, 200, n_genes)
        Quantification.of_genes(
            batch=batch, processor_job=ProcessorJob.objects.create(pipeline="salmon_quant"),
            transcriptome_index=index, mapping_rate=0.5, reads_processed=1,
            gene_ids=[f"G{n}" for n in range(n_genes)], counts=values, tpm=values,
        ).save()  # fmt: skip
        counts[batch.accession] = values
    rows = Quantification.objects.order_by("batch__accession").values_list(
        "batch__accession", "gene_set__size", "count_values"
    )
    seen = []
    copy_rows(rows, lambda fields: seen.append([bytes(f) for f in fields]))
    assert [r[0].decode() for r in seen] == sorted(counts)
    for (accession, size, data), (_, selected_size, selected) in zip(seen, rows, strict=True):
        assert int.from_bytes(size, "big") == selected_size
        assert data == bytes(selected)
        assert np.array_equal(np.frombuffer(data, "<f8"), counts[accession.decode()])


# --- the matrix ----------------------------------------------------------------


def reference_matrix(accessions, genes, gene_sets, runs, mean):
    """The matrix as the pipeline built it before (a column per sample,
    np.add.at per run), to check the faster one against."""
    matrix = np.full((len(genes), len(accessions)), np.nan)
    for column, accession in enumerate(accessions):
        total, seen = np.zeros(len(genes)), np.zeros(len(genes), dtype=bool)
        for gene_set_id, values in runs[accession]:
            where = np.searchsorted(np.array(genes), np.array(gene_sets[gene_set_id]))
            np.add.at(total, where, values)
            seen[where] = True
        if mean:
            total /= len(runs[accession])
        matrix[seen, column] = total[seen]
    return matrix.T


@pytest.mark.parametrize("mean", [False, True])
def test_the_matrix_matches_the_simple_way_for_any_mix_of_runs_and_gene_sets(mean):
    rng = np.random.default_rng(5)
    genes = sorted(f"G{n:03d}" for n in range(40))
    gene_sets = {
        1: genes,  # every gene, in order
        2: sorted(rng.choice(genes, 25, replace=False).tolist()),
        3: rng.permutation(genes[:30]).tolist(),  # another order
        4: ["G001", "G002", "G001"],  # a gene twice: summed
    }
    runs = {f"S{n}": [] for n in range(12)}
    for accession, plan in zip(runs, [[1], [2], [3], [4], [1, 1], [2, 1], [1, 2], [3, 2, 4],
                                      [2, 2], [4, 1], [1], [2]], strict=True):  # fmt: skip
        for gene_set_id in plan:
            values = np.round(rng.gamma(0.5, 100, len(gene_sets[gene_set_id])), 3)
            values[rng.random(len(values)) < 0.1] = 0.0
            runs[accession].append((gene_set_id, values))
    accessions = sorted(runs)
    matrix = SampleMatrix(accessions, genes, gene_sets, mean=mean)
    order = [(a, s, v) for a in accessions for s, v in runs[a]]
    for n in rng.permutation(len(order)):  # the database gives rows in any order
        accession, gene_set_id, values = order[n]
        matrix.place(accession, gene_set_id, memoryview(values.astype("<f8").tobytes()))
    matrix.place("SOMEONE-ELSE", 1, b"")  # a run also another sample's: ignored
    matrix.finish()
    expected = reference_matrix(accessions, genes, gene_sets, runs, mean)
    assert np.array_equal(matrix.values, expected, equal_nan=True)
    assert np.isnan(matrix.values[1]).sum() == 15  # S1's index lacks 15 genes


def test_a_quantification_of_the_wrong_size_or_a_missing_sample_fails_saying_which():
    matrix = SampleMatrix(["S1", "S2"], ["G1", "G2"], {1: ["G1", "G2"]}, mean=False)
    with pytest.raises(JobError, match="S1 has 12 bytes of values for 2 genes") as failed:
        matrix.place("S1", 1, bytes(12))
    assert failed.value.no_retry
    with pytest.raises(JobError, match="replaced while the dataset was read") as failed:
        matrix.place("S1", 99, bytes(16))
    assert not failed.value.no_retry
    matrix.place("S1", 1, bytes(16))
    with pytest.raises(JobError, match=r"1 of the dataset's samples .*: S2"):
        matrix.finish()


# --- the TSV and the Parquet file -----------------------------------------------


def table_of(columns: dict[str, np.ndarray], genes: list[str]) -> pa.Table:
    arrays = [pa.array(genes)] + [pa.array(v, from_pandas=True) for v in columns.values()]
    return pa.Table.from_arrays(arrays, ["gene_id", *columns])


@pytest.mark.parametrize("forked_with_polars", [False, True], ids=["polars", "arrow"])
def test_the_tsv_reads_back_exactly_whatever_the_values(monkeypatch, forked_with_polars):
    monkeypatch.setattr("processors.dataset_files.TSV_SLICE_ROWS", 7)
    monkeypatch.setattr("processors.dataset_files._forked_with_polars", forked_with_polars)
    rng = np.random.default_rng(3)
    n = 60
    special = [0.0, -0.0, 1 / 3, 0.1 + 0.2, 5e-324, 1.7976931348623157e308, 1e22, 1e-7,
               123456789.123, 3e5, -2.5, math.pi, 1e16, 2.0**53 + 2, float("inf")]  # fmt: skip
    columns = {
        "gene_id": np.concatenate([special, rng.gamma(0.5, 200, n - len(special))]),
        "SAMN2": np.exp(rng.uniform(-700, 700, n)),  # any magnitude, all 17 digits
        "SAMN3": np.round(rng.gamma(0.5, 200, n), 3),  # as salmon_quant stores counts
    }
    columns["SAMN3"][::4] = np.nan  # genes this sample's index lacks
    genes = [f"ENSG{i:011d}" for i in range(n)]
    stream = TsvStream(table_of(columns, genes), ["gene_id", *columns], threads=3)
    pieces, asked = [], [1]
    while piece := stream.read(asked[-1]):
        pieces.append(piece)
        asked.append(asked[-1] * 3 + 1)
    stream.close()
    # n bytes for each read(n) until the last, as S3's multipart upload expects
    assert [len(p) for p in pieces[:-1]] == asked[: len(pieces) - 1]
    lines = gzip.decompress(b"".join(pieces)).decode().split("\n")
    assert lines[0] == "gene_id\tgene_id\tSAMN2\tSAMN3" and lines[-1] == ""
    for row, line in enumerate(lines[1:-1]):
        gene, *cells = line.split("\t")
        assert gene == genes[row]
        for cell, (name, values) in zip(cells, columns.items(), strict=True):
            value = values[row]
            if math.isnan(value):
                assert cell == "", (name, row)
            else:
                assert float(cell) == value and math.copysign(1, float(cell)) == math.copysign(
                    1, value
                ), (name, row, cell)


def test_a_child_forked_from_a_process_with_polars_formats_without_it():
    """polars' threads do not survive fork(): such a child would hang."""
    import polars  # noqa: F401 (loaded in this, the parent, process)

    pid = os.fork()
    if pid == 0:
        os._exit(0 if dataset_files._forked_with_polars else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert not dataset_files._forked_with_polars


def test_an_empty_matrix_is_a_header_alone():
    stream = TsvStream(table_of({}, []), ["gene_id"], threads=1)
    assert gzip.decompress(stream.read()) == b"gene_id\n"


def test_the_parquet_file_goes_through_the_pipe_whole(refinery_dirs):
    columns = {"SAMN1": np.array([1.5, np.nan, 2.0**-1074]), "SAMN2": np.array([0.0, 3.0, 1e300])}
    table = table_of(columns, ["G1", "G2", "G3"])
    pipe = ChunkPipe()
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as beside:
        storing = beside.submit(store_from_pipe, permanent_storage(), pipe, "t/d.parquet")
        write_parquet(table, pipe)
        stored = storing.result()
    with permanent_storage().open("t/d.parquet") as handle:
        body = handle.read()
    assert stored.size == len(body)
    back = pq.read_table(io.BytesIO(body))
    assert back.equals(table)


def test_a_writer_that_fails_makes_the_reader_fail_not_end():
    pipe = ChunkPipe()
    pipe.write(b"PAR1 and half a file")
    pipe.end(OSError("disk full"))
    with pytest.raises(OSError, match="could not be written: disk full"):
        pipe.read(1 << 20)


def test_a_side_that_stops_does_not_leave_the_other_waiting():
    started = time.monotonic()
    full = ChunkPipe()
    for _ in range(ChunkPipe.DEPTH):
        full.write(b"x")
    full.cancel()  # the reader is gone: the queue will never drain
    with pytest.raises(BrokenPipeError):
        full.write(b"x")
    empty = ChunkPipe()
    empty.cancel()  # the writer is gone: nothing more will come
    with pytest.raises(BrokenPipeError):
        empty.read(1)
    assert time.monotonic() - started < 5


# --- failed and killed builds ------------------------------------------------------


def dataset_job(samples: int = 3, genes: int = 0) -> ProcessorJob:
    """A counts dataset of `samples` quantified samples: two genes with the
    values the tests below read, or `genes` genes of random values."""
    from api.datasets import create_dataset

    index = with_index()
    rng = np.random.default_rng(11)
    gene_ids = [f"G{n + 1:05d}" for n in range(genes)] if genes else ["G1", "G2"]
    rows = []
    for number in range(samples):
        counts = rng.gamma(0.5, 200, genes) if genes else [number, 1.5]
        sample = Sample.objects.create(
            source="ena", accession=f"SAMN{number}", organism=index.organism
        )
        batch = Batch.objects.create(
            source="ena", accession=f"SRR{number}", organism=index.organism
        )
        sample.batches.add(batch)
        Quantification.of_genes(
            batch=batch, processor_job=ProcessorJob.objects.create(pipeline="salmon_quant"),
            transcriptome_index=index, mapping_rate=0.9, reads_processed=1,
            gene_ids=gene_ids, counts=counts, tpm=counts,
        ).save()  # fmt: skip
        rows.append(sample)
    asked = {
        "samples": [s.accession for s in rows], "experiments": [], "value": DatasetValue.COUNTS,
        "sample_rows": rows, "organism_row": index.organism,
    }  # fmt: skip
    dataset = create_dataset(asked, user=None)
    return ProcessorJob.objects.get(batches__dataset=dataset)


@pytest.mark.django_db
def test_a_parquet_file_that_cannot_be_written_fails_the_build_storing_nothing(
    refinery_dirs, monkeypatch
):
    """pyarrow failing half-way through (a full disk, say) cannot be provoked
    here: its writer is replaced by one that writes part of a file, then fails."""

    def fails_half_way(table, where, **options):
        where.write(b"PAR1" + bytes(100))
        raise OSError("No space left on device")

    monkeypatch.setattr(pq, "write_table", fails_half_way)
    job = dataset_job()
    assert start_here(job)
    assert not execute_job(job)
    job.refresh_from_db()
    assert "No space left on device" in job.failure_reason
    assert list(permanent_storage().list(f"processor/dataset_matrix/job-{job.pk}/")) == []
    assert not ComputedFile.objects.filter(processor_job=job).exists()
    assert Dataset.objects.get().matrix_file is None


@pytest.mark.django_db(transaction=True)
def test_a_build_killed_after_storing_its_files_leaves_them_to_the_retry(
    refinery_dirs, monkeypatch
):
    """The worker is killed (os._exit in the forked child, as the OOM killer
    would) once both files are stored and before they are recorded: nothing is
    recorded, and the retry removes them and records its own."""
    import processors.dataset_matrix as pipeline

    store_files = pipeline.store_files

    def store_then_die(context):
        store_files(context)
        os._exit(137)

    monkeypatch.setattr(pipeline, "store_files", store_then_die)
    job = dataset_job()
    run_supervised(job)
    job.refresh_from_db()
    assert job.state == JobState.FAILED and job.exit_code == 137
    killed = f"processor/dataset_matrix/job-{job.pk}/"
    assert sorted(permanent_storage().list(killed)) == [
        f"{killed}dataset.parquet", f"{killed}dataset.tsv.gz",
    ]  # fmt: skip
    assert Dataset.objects.get().matrix_file is None

    monkeypatch.setattr(pipeline, "store_files", store_files)
    retry = job.create_retry()
    run_supervised(retry)
    retry.refresh_from_db()
    assert retry.state == JobState.SUCCEEDED, retry.failure_reason
    assert list(permanent_storage().list(killed)) == []
    dataset = Dataset.objects.get()
    with permanent_storage().open(dataset.matrix_file.key) as handle:
        lines = gzip.decompress(handle.read()).decode().splitlines()
    assert lines[0] == "gene_id\tSAMN0\tSAMN1\tSAMN2"
    rows = [line.split("\t") for line in lines[1:]]
    assert [(gene, [float(c) for c in cells]) for gene, *cells in rows] == [
        ("G1", [0.0, 1.0, 2.0]), ("G2", [1.5, 1.5, 1.5]),
    ]  # fmt: skip


@pytest.mark.django_db
def test_files_larger_than_an_s3_part_stream_into_multipart_uploads(
    s3_storage, settings, monkeypatch
):
    """12 MB of random doubles (they barely compress): both files are larger
    than S3's smallest part (5 MB, the part size here), so each is a multipart
    upload fed by `read(part size)` as the file is made (the multipart upload
    is watched, not replaced)."""
    settings.REFINERY_S3_PART_SIZE = 5 * 1024 * 1024
    from common.storage import S3Storage

    multipart = []
    upload = S3Storage._put_multipart
    monkeypatch.setattr(S3Storage, "_put_multipart", lambda self, stream, key, first, digest: (
        multipart.append(key.rsplit("/", 1)[-1]) or upload(self, stream, key, first, digest)
    ))  # fmt: skip
    job = dataset_job(samples=300, genes=5000)
    assert start_here(job)
    assert execute_job(job), job.failure_reason
    dataset = Dataset.objects.get()
    quantifications = {
        q.batch.samples.get().accession: np.array(q.counts)
        for q in Quantification.objects.select_related("batch")
    }
    for stored in (dataset.matrix_file, dataset.parquet_file):
        assert stored.size > 5 * 1024 * 1024
        with permanent_storage().open(stored.key) as handle:
            body = handle.read()
        assert len(body) == stored.size
        if stored.format == "parquet":
            table = pq.read_table(io.BytesIO(body))
            got = {name: table[name].to_numpy() for name in table.column_names[1:]}
        else:
            lines = gzip.decompress(body).decode().splitlines()
            header = lines[0].split("\t")[1:]
            cells = np.array([line.split("\t")[1:] for line in lines[1:]], dtype=float)
            got = dict(zip(header, cells.T, strict=True))
        assert sorted(got) == sorted(quantifications)
        for accession, values in quantifications.items():
            assert np.array_equal(got[accession], values), (stored.format, accession)
    assert sorted(multipart) == ["dataset.parquet", "dataset.tsv.gz"]


def run_supervised(job) -> None:
    assert job.mark_started("test-worker", "1")
    supervisor = Supervisor()
    supervisor.launch(job)
    deadline = time.monotonic() + 60
    while supervisor.busy and time.monotonic() < deadline:
        supervisor.poll()
        time.sleep(0.05)
