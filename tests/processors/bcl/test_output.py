"""Appending a tile's spooled gzip members to the FASTQ files: with copy_file_range,
and through memory where the filesystem cannot copy between files (EXDEV and the
like; such a filesystem cannot be set up here, so that failure is simulated by
replacing os.copy_file_range, the only thing mocked)."""

from __future__ import annotations

import errno
import gzip
import os

import pytest

from processors.bcl import output
from processors.bcl.fastq import gzip_member
from processors.bcl.output import OutputFiles, Spool


def spool_members(tmp_path, texts):
    spool = Spool(tmp_path / "1_1101.gz")
    places = [spool.add(gzip_member(text)) for text in texts]
    spool.close()
    return spool.path, places


@pytest.mark.parametrize("copy_works", [True, False])
def test_members_appended_in_order(tmp_path, monkeypatch, copy_works):
    if not copy_works:

        def refuse(*args, **kwargs):
            raise OSError(errno.EXDEV, "Invalid cross-device link")

        monkeypatch.setattr(os, "copy_file_range", refuse)
    texts = [b"@r%d\nACGT\n+\nIIII\n" % i * 1000 for i in range(6)]
    path, places = spool_members(tmp_path, texts)
    files = OutputFiles()
    monkeypatch.setattr(output, "MAX_OPEN", 1)  # closing and reopening keeps appending
    source = os.open(path, os.O_RDONLY)
    try:
        files.append(tmp_path / "out/A.fastq.gz", gzip_member(b"first\n"))
        for number, (offset, length) in enumerate(places):
            files.copy(tmp_path / f"out/{'AB'[number % 2]}.fastq.gz", source, offset, length)
    finally:
        os.close(source)
        files.close()
    a = gzip.decompress((tmp_path / "out/A.fastq.gz").read_bytes())
    b = gzip.decompress((tmp_path / "out/B.fastq.gz").read_bytes())
    assert a == b"first\n" + texts[0] + texts[2] + texts[4]
    assert b == texts[1] + texts[3] + texts[5]


def test_other_copy_errors_are_not_swallowed(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "copy_file_range", broken)
    path, places = spool_members(tmp_path, [b"x" * 100])
    files = OutputFiles()
    source = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(OSError):
            files.copy(tmp_path / "A.fastq.gz", source, *places[0])
    finally:
        os.close(source)
        files.close()
