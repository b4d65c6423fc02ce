"""Text longer than its column is refused on every database (SQLite would
store it whole)."""

import pytest

from common.models import Batch, Organism, OriginalFile
from common.models.lengths import FieldTooLong, length_problem


@pytest.mark.django_db
def test_text_longer_than_its_column_is_refused_before_it_is_saved():
    with pytest.raises(
        FieldTooLong, match=r"OriginalFile\.filename takes at most 512 characters, not 100000"
    ):
        OriginalFile.objects.create(source_url="http://x/a", filename="a" * 100_000)
    with pytest.raises(FieldTooLong, match=r"Organism\.scientific_name takes at most 255"):
        Organism.get_or_create_by_name("x" * 300, None)
    batch = Batch.objects.create(source="ensembl", accession="a", pipeline_required="smoke_test")
    batch.accession = "b" * 256
    with pytest.raises(FieldTooLong, match=r"Batch\.accession"):
        batch.save()
    assert not OriginalFile.objects.exists() and not Organism.objects.exists()
    assert Batch.objects.get().accession == "a"


def test_length_problem_says_nothing_of_what_fits():
    assert length_problem(OriginalFile, "filename", "a" * 512) is None
    assert length_problem(OriginalFile, "size", 10**12) is None
    assert length_problem(OriginalFile, "filename", "a" * 513) == (
        "OriginalFile.filename takes at most 512 characters, not 513"
    )
