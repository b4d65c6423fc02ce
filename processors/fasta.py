"""FASTA files, streamed: gunzipping a genome while checking that it is FASTA
with sequences in it (`FastaScan`), and counting a FASTA file's records."""

from __future__ import annotations

from pathlib import Path

from common.chunks import CHUNK
from processors.raw_inputs import open_input
from runner.pipeline import JobError


class FastaScan:
    """Counts a FASTA file's records and residues as its bytes stream past, a
    chunk at a time (headers may span chunks)."""

    WHITESPACE = (b"\n", b"\r", b" ", b"\t")

    def __init__(self) -> None:
        self.records = 0
        self.residues = 0
        self.stray = 0  # non-blank bytes before the first header
        self.size = 0
        self._in_header = False
        self._line_start = True

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        pos, end = 0, len(chunk)
        while pos < end:
            if self._in_header:
                newline = chunk.find(b"\n", pos)
                if newline < 0:
                    return
                self._in_header, self._line_start, pos = False, True, newline + 1
            elif self._line_start and chunk[pos] == 0x3E:  # ">"
                self.records += 1
                self._in_header, pos = True, pos + 1
            else:
                header = chunk.find(b"\n>", pos)
                stop = end if header < 0 else header + 1
                text = chunk[pos:stop]
                residues = len(text) - sum(text.count(c) for c in self.WHITESPACE)
                if self.records:
                    self.residues += residues
                else:
                    self.stray += residues
                self._line_start = text.endswith(b"\n")
                pos = stop

    def check(self, filename: str) -> None:
        """Fail unless the file was FASTA with at least one sequence."""
        if self.stray:
            raise JobError(
                f"{filename} is not a FASTA file: it does not start with a '>' header line",
                no_retry=True,
            )
        if not self.records:
            raise JobError(
                f"{filename} has no sequences: no '>' header line in its {self.size} bytes",
                no_retry=True,
            )
        if not self.residues:
            raise JobError(
                f"{filename} has no sequences: its {self.records} header line(s) have no bases",
                no_retry=True,
            )


def gunzip_fasta(source: Path, target: Path) -> FastaScan:
    """Copy `source` to `target`, gunzipped when its name ends in .gz, scanning
    it on the way; `check` the scan to fail unless it was FASTA."""
    scan = FastaScan()
    with open(target, "wb") as out, open_input(source) as stream:
        while chunk := stream.read(CHUNK):
            scan.feed(chunk)
            out.write(chunk)
    return scan


def count_fasta_records(path: Path) -> int:
    """The `>` headers in a FASTA file (one that a tool wrote, so `>` starts a header)."""
    count = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            count += chunk.count(b">")
    return count
