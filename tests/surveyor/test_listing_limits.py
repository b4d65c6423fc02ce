"""A `CHECKSUMS` of 150 MB on one line, whose one "name" ends like a genome: a
reader that took it whole would choose it and store a 150-million-character file
name. How much of a listing is read at all is capped where it is fetched
(`REFINERY_MAX_RESPONSE_BYTES`); whatever is read, no line longer than
`MAX_CHECKSUMS_LINE` is parsed, and nothing of it is stored."""

from __future__ import annotations

import pytest

from common.models import JobState, OriginalFile, SurveyJob
from tests.surveyor.test_hostile_listings import SUFFIX, genome_folder, survey_demonstrans

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_huge_checksums_stores_nothing_and_fails_clearly(ensembl, tmp_path):
    huge = tmp_path / "CHECKSUMS"
    with open(huge, "w") as out:
        out.write("01234 99999 ")
        for _ in range(150):
            out.write("A" * 1024 * 1024)
        out.write(f"{SUFFIX}\n")
    ensembl.override_file(f"{genome_folder(ensembl)}/CHECKSUMS", huge)
    error = survey_demonstrans()
    job = SurveyJob.objects.get()
    assert job.state == JobState.FAILED, job.failure_reason
    assert error and f"{genome_folder(ensembl)}/CHECKSUMS" in job.failure_reason
    assert (
        "line 1 is longer than 1024 characters" in job.failure_reason
        or "is larger than" in job.failure_reason  # capped as it is read
    ), job.failure_reason
    assert len(job.failure_reason) < 1000 and "AAAAAAAAAA" not in job.failure_reason
    assert not OriginalFile.objects.exists()
