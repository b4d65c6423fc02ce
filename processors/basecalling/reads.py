"""Basecalls and the reads they came from: Dorado's FASTQ (or BAM) split into
one gzip FASTQ (or BAM) per pod5 file, and the check that every read of the input is accounted
for (called, or among the reads Dorado reports it filtered out).

`check_basecalls` is the one check of a batch's output, whoever basecalled it:
this processor, or a remote engine reporting its outputs.

A Dorado FASTQ header is the read id, then SAM-style tags, tab-separated:
`@<read id>\tqs:f:<mean qscore>\t…\tfn:Z:<pod5 file name>\t…\tRG:Z:<run id>_<model>`.
`fn:Z:` names the pod5 file a read came from; a read Dorado split in two has
ids of its own and names its parent with `pi:Z:`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from isal import igzip

from processors.basecalling import bam
from runner.pipeline import JobError

SHOWN_IDS = 5


class BadCalls(ValueError):
    """Basecalls that are not what Dorado writes; the message says where."""


@dataclass
class FastqRecord:
    header: bytes  # the whole header line, without "@" and the line end
    sequence: bytes
    quality: bytes

    @property
    def read_id(self) -> str:
        return self.header.split(None, 1)[0].decode("ascii", "replace") if self.header else ""

    def tags(self) -> dict[str, str]:
        found = {}
        for part in self.header.split()[1:]:  # tab-separated; spaces read too
            pieces = part.decode("utf-8", "replace").split(":", 2)
            if len(pieces) == 3:
                found[pieces[0]] = pieces[2]
        return found

    def write(self, out: BinaryIO) -> None:
        out.write(b"@" + self.header + b"\n" + self.sequence + b"\n+\n" + self.quality + b"\n")


def fastq_records(stream: BinaryIO, where: str) -> Iterator[FastqRecord]:
    """The records of a FASTQ stream; BadCalls names the line that is wrong."""
    number = 0
    while True:
        header = stream.readline()
        if not header:
            return
        sequence, plus, quality = stream.readline(), stream.readline(), stream.readline()
        number += 4
        if not header.startswith(b"@") or not plus.startswith(b"+"):
            raise BadCalls(f"{where}: line {number - 3} does not start a FASTQ record")
        sequence, quality = sequence.rstrip(b"\r\n"), quality.rstrip(b"\r\n")
        if len(sequence) != len(quality):
            raise BadCalls(
                f"{where}: the record at line {number - 3} has {len(sequence)} bases and "
                f"{len(quality)} quality scores"
            )
        yield FastqRecord(header[1:].rstrip(b"\r\n"), sequence, quality)


def read_ids_of_pod5(path: Path) -> list[str]:
    """Every read id in a pod5 file."""
    import pod5

    with pod5.Reader(path) as reader:
        return [str(record.read_id) for record in reader.reads()]


def split_calls(calls: Path, outputs: dict[str, Path]) -> None:
    """Write each record of Dorado's output `calls` (FASTQ, or BAM when the outputs
    end in .bam) into the output of the pod5 file its `fn:Z:` names (`outputs`:
    pod5 file name → path: gzip FASTQ, or BAM). Every output is written, empty if
    no read of its pod5 file was called."""
    if all(path.suffix == ".bam" for path in outputs.values()):
        split_bam(calls, outputs)
        return
    handles = {name: igzip.open(path, "wb", compresslevel=1) for name, path in outputs.items()}
    try:
        with open(calls, "rb") as stream:
            for record in fastq_records(stream, "Dorado's output"):
                source = record.tags().get("fn", "")
                if source not in handles:
                    raise JobError(not_in_batch(record.read_id, source))
                record.write(handles[source])
    except BadCalls as error:
        raise JobError(str(error)) from None
    finally:
        for handle in handles.values():
            handle.close()


def not_in_batch(read_id: str, source: object) -> str:
    return (
        f"Dorado's output has read {read_id[:40]!r} from {str(source)[:200]!r}, which is not "
        "a pod5 file of this batch"
    )


def split_bam(calls: Path, outputs: dict[str, Path]) -> None:
    """split_calls for BAM: each output has the input's header and its records."""
    try:
        stream, header = bam.open_bam(calls)
    except bam.BadBam as error:
        raise JobError(f"Dorado's output is not BAM: {error}") from None
    writers = {name: bam.BgzfWriter(path) for name, path in outputs.items()}
    try:
        for writer in writers.values():
            writer.write(header)
        for record in bam.bam_records(stream):
            source = record.tags.get("fn", "")
            if source not in writers:
                raise JobError(not_in_batch(record.read_id, source))
            writers[source].write(record.raw)
    except (bam.BadBam, OSError, EOFError) as error:
        raise JobError(f"Dorado's output cannot be read as BAM: {error}") from None
    finally:
        stream.close()
        for writer in writers.values():
            writer.close()


@dataclass
class Call:
    """One record of a basecaller's output: what the check needs of it."""

    read_id: str
    tags: dict[str, object]
    bases: int
    qscore: float


def calls_in(path: Path, where: str) -> Iterator[Call]:
    """The records of a gzip FASTQ or a BAM file (by its name's ending)."""
    if path.suffix == ".bam":
        stream, _header = bam.open_bam(path)
        with stream:
            for record in bam.bam_records(stream):
                qscore = record.tags.get("qs", 0.0)
                yield Call(
                    record.read_id,
                    record.tags,
                    record.sequence_length,
                    float(qscore) if isinstance(qscore, int | float) else 0.0,
                )
        return
    with igzip.open(path, "rb") as stream:
        for record in fastq_records(stream, where):
            tags = record.tags()
            yield Call(record.read_id, tags, len(record.sequence), record_qscore(record, tags))


@dataclass
class FileCalls:
    reads_in: int
    called: int = 0  # input reads with at least one call
    records: int = 0  # FASTQ records (a split read gives several)
    bases: int = 0
    qscore_sum: float = 0.0
    models: set[str] = field(default_factory=set)

    @property
    def mean_qscore(self) -> float | None:
        return round(self.qscore_sum / self.records, 3) if self.records else None


@dataclass
class BasecallSummary:
    reads_in: int
    reads_called: int
    reads_not_called: int
    records: int
    bases: int
    mean_qscore: float | None
    models: list[str]
    per_file: dict[str, dict]

    def as_parameters(self) -> dict:
        return {
            "reads_in": self.reads_in,
            "reads_called": self.reads_called,
            "reads_filtered": self.reads_not_called,
            "records": self.records,
            "total_bases": self.bases,
            "mean_qscore": self.mean_qscore,
            "models_reported": self.models,
            "per_file": self.per_file,
        }


def record_qscore(record: FastqRecord, tags: dict[str, str]) -> float:
    """Dorado's mean qscore of the read (`qs:`), else the same from its qualities."""
    try:
        return float(tags["qs"])
    except (KeyError, ValueError):
        pass
    if not record.quality:
        return 0.0
    error = sum(10 ** (-(q - 33) / 10) for q in record.quality) / len(record.quality)
    return -10 * math.log10(error)


def check_basecalls(
    expected: dict[str, list[str]], fastqs: dict[str, Path], reported_filtered: int | None
) -> BasecallSummary:
    """Check a batch's basecalls: `expected` gives each pod5 file's read ids,
    `fastqs` its gzip FASTQ (or BAM: a path ending in .bam), `reported_filtered`
    how many reads the basecaller says it filtered out. Every record must be a
    read of its own pod5 file (or a part of one, `pi:Z:`), no read id twice, and
    the input reads without a call must be no more than the basecaller reports
    filtered. JobError (with `no_retry` for outputs that cannot be read) says
    what does not add up."""
    if set(fastqs) != set(expected):
        missing = sorted(set(expected) - set(fastqs))
        extra = sorted(set(fastqs) - set(expected))
        raise JobError(
            f"the basecalls do not match the batch's pod5 files: no FASTQ for {missing}, "
            f"FASTQ for files not in the batch {extra}"
        )
    per_file: dict[str, FileCalls] = {}
    seen_ids: set[str] = set()
    uncalled: list[str] = []
    for name, ids in expected.items():
        wanted = set(ids)
        stats = per_file[name] = FileCalls(reads_in=len(wanted))
        called: set[str] = set()
        where = f"the basecalls of {name} ({os.path.basename(fastqs[name])})"
        try:
            for call in calls_in(fastqs[name], where):
                read_id, tags = call.read_id, call.tags
                parent = tags.get("pi", read_id)
                if tags.get("fn", name) != name or parent not in wanted:
                    raise JobError(
                        f"{where} has read {read_id[:40]!r}, which is not a read of {name}"
                    )
                if read_id in seen_ids:
                    raise JobError(f"{where}: read {read_id} is called twice")
                seen_ids.add(read_id)
                called.add(parent)
                stats.records += 1
                stats.bases += call.bases
                stats.qscore_sum += call.qscore
                if isinstance(tags.get("RG"), str):
                    stats.models.add(tags["RG"].split("_", 1)[-1])
        except (BadCalls, bam.BadBam, OSError, EOFError) as error:
            raise JobError(f"{where} cannot be read: {error}", no_retry=True) from None
        stats.called = len(called)
        uncalled.extend(sorted(wanted - called))
    allowed = reported_filtered or 0
    if len(uncalled) > allowed:
        shown = ", ".join(uncalled[:SHOWN_IDS]) + (" …" if len(uncalled) > SHOWN_IDS else "")
        raise JobError(
            f"{len(uncalled)} read(s) of the input have no basecall and the basecaller "
            f"reported {allowed} filtered: reads unaccounted for: {shown}"
        )
    records = sum(s.records for s in per_file.values())
    qscore_sum = sum(s.qscore_sum for s in per_file.values())
    return BasecallSummary(
        reads_in=sum(s.reads_in for s in per_file.values()),
        reads_called=sum(s.called for s in per_file.values()),
        reads_not_called=len(uncalled),
        records=records,
        bases=sum(s.bases for s in per_file.values()),
        mean_qscore=round(qscore_sum / records, 3) if records else None,
        models=sorted({m for s in per_file.values() for m in s.models}),
        per_file={
            name: {
                "reads_in": s.reads_in,
                "reads_called": s.called,
                "records": s.records,
                "bases": s.bases,
                "mean_qscore": s.mean_qscore,
            }
            for name, s in per_file.items()
        },
    )
