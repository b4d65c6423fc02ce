"""Reading a CHECKSUMS listing from a source that may lie."""

import pytest

from common.bsd_sum import MAX_CHECKSUMS_LINE, ChecksumEntry, read_checksums


def test_each_entry_says_its_line_and_the_largest_size_it_allows():
    entries = read_checksums("07211  9766 a.fa.gz\n\n00042     1\tREADME\n")
    assert entries == {"a.fa.gz": ChecksumEntry(7211, 9766, 1), "README": ChecksumEntry(42, 1, 3)}
    assert entries["a.fa.gz"].max_size == 9766 * 1024


@pytest.mark.parametrize(
    "line, why",
    [
        (
            "1 1 " + "a" * MAX_CHECKSUMS_LINE,
            f"line 2 is longer than {MAX_CHECKSUMS_LINE} characters",
        ),
        ("\u00b2 1 a.fa.gz", "line 2 is not '<sum> <blocks> <name>'"),  # '²'.isdigit() is True
        ("1 " + "9" * 30 + " a.fa.gz", "line 2 is not '<sum> <blocks> <name>'"),
        ("1 1", "line 2 is not '<sum> <blocks> <name>'"),
    ],
    ids=["long", "superscript", "huge-number", "no-name"],
)
def test_a_line_that_is_not_a_sum_fails_naming_the_line_not_quoting_it(line, why):
    with pytest.raises(ValueError) as error:
        read_checksums(f"1 1 fine.txt\n{line}\n")
    assert str(error.value).startswith(why)
    assert "a" * 50 not in str(error.value) and "a.fa.gz" not in str(error.value)
