"""The one rule for names from outside: one plain file name."""

import pytest

from common.filenames import MAX_NAME_BYTES, UnsafeName, check_name, name_problem, shorten

PLAIN = [
    "Homo_sapiens.GRCh38.dna.primary_assembly.fa.gz",
    "CHECKSUMS",
    "sample 01.fastq.gz",
    "é" * (MAX_NAME_BYTES // 2),  # 254 bytes in UTF-8
    "a..b",
]
UNSAFE = {
    "": "empty",
    ".": "names a folder",
    "..": "names a folder",
    ".hidden": "starts with '.'",
    "/some/dir/x.fa.gz": "contains '/'",
    "../../../x.fa.gz": "contains '/'",
    "dir\\x.fa.gz": "contains '\\\\'",
    "nul\0.fa": "control character",
    "line\nbreak": "control character",
    "bell\x07": "control character",
    "right-to-left\u202eag.exe": "control character",
    " x.fa": "white space",
    "x.fa ": "white space",
    "é" * 128: "longer than 255 bytes (256)",
    "a" * 256: "longer than 255 bytes",
    "\udc80": "control character",
}


@pytest.mark.parametrize("name", PLAIN)
def test_plain_names_pass(name):
    assert name_problem(name) is None
    assert check_name(name) == name


@pytest.mark.parametrize("name, why", list(UNSAFE.items()))
def test_names_that_are_paths_or_worse_are_refused_with_the_reason(name, why):
    assert why in name_problem(name)
    with pytest.raises(UnsafeName) as error:
        check_name(name, "CHECKSUMS line 3 names a file")
    assert str(error.value).startswith("CHECKSUMS line 3 names a file ")
    assert "is not one plain file name" in str(error.value) and why in str(error.value)


def test_a_name_that_is_not_text_is_refused():
    assert name_problem(123) == "it is a int, not text"
    assert name_problem(None) == "it is a NoneType, not text"


def test_a_huge_name_is_shortened_in_messages():
    with pytest.raises(UnsafeName) as error:
        check_name("A" * 10_000_000)
    message = str(error.value)
    assert len(message) < 600 and "(10000000 characters)" in message
    assert shorten("short") == "'short'"
