"""Talking to ENA's Portal API: the `filereport` of a study or a run.

The base URL is a setting (`ENA_PORTAL_URL`), so a mirror or a test server can
stand in. Every request goes through `common.source_http` (redirects stay on
the source, bodies are capped, nothing ENA sent is quoted in a reason). 5xx,
429 and timeouts are retried with backoff; an accession ENA has nothing for is
an error that names it. The answer is read as TSV (or JSON) and every row is
checked against the shape of the fields asked for.
"""

from __future__ import annotations

import csv
import io
import json

import requests
from django.conf import settings

from common.shapes import ListOf, ShapeError, Text, check
from common.source_http import SourceHTTPError, fetch_answer, new_session, status_text
from runner.pipeline import JobError

FIELDS = (
    "run_accession", "experiment_accession", "study_accession", "secondary_study_accession",
    "sample_accession", "secondary_sample_accession", "scientific_name", "tax_id",
    "library_layout", "library_strategy", "library_source", "instrument_platform",
    "instrument_model", "read_count", "base_count", "fastq_ftp", "fastq_md5", "fastq_bytes",
    "sample_title", "experiment_title", "study_title",
)  # fmt: skip
TEXT = Text("a text without control characters", r"[^\x00-\x08\x0a-\x1f\x7f]*", 100_000)
ROW = {name: TEXT for name in FIELDS if name != "run_accession"} | {
    "run_accession": Text("a run accession", r"[SED]RR[0-9]{1,12}", 20)
}


class EnaClient:
    """Reads ENA's Portal API."""

    def __init__(self, session: requests.Session | None = None, answer_format: str = "tsv"):
        self.session = session or new_session()
        self.timeout = settings.REFINERY_HTTP_TIMEOUT_S
        self.format = answer_format

    def filereport(self, accession: str) -> list[dict[str, str]]:
        """One row per run of `accession` (a study or a run), with FIELDS."""
        url = settings.ENA_PORTAL_URL.rstrip("/") + "/filereport"
        params = {
            "accession": accession,
            "result": "read_run",
            "fields": ",".join(FIELDS),
            "format": self.format,
        }
        try:
            answer = fetch_answer(url, session=self.session, params=params, timeout=self.timeout)
        except SourceHTTPError as error:
            raise JobError(
                f"ENA filereport for {accession}: {error.reason}", no_retry=error.permanent
            ) from None
        status, body = answer.status, answer.body
        if status in (400, 404):
            raise JobError(
                f"ENA does not know the accession {accession} ({status_text(status)})",
                no_retry=True,
            )
        if status != 200:
            raise JobError(f"ENA filereport for {accession}: {status_text(status)}")
        rows = self.parse(body, accession)
        if not rows:
            raise JobError(f"ENA has no runs for the accession {accession}", no_retry=True)
        return rows

    def parse(self, body: bytes, accession: str) -> list[dict[str, str]]:
        where = f"ENA filereport for {accession}"
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise JobError(f"{where}: the answer is not UTF-8 text") from None
        if not text.strip():
            return []
        if self.format == "json":
            try:
                rows = json.loads(text)
            except (ValueError, RecursionError):
                raise JobError(f"{where}: the answer is not JSON ({len(body)} bytes)") from None
        else:
            reader = csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE)
            lines = [line for line in reader if line]
            header = lines[0]
            missing = [name for name in FIELDS if name not in header]
            if missing:
                raise JobError(f"{where}: the header lacks the fields {', '.join(missing)}")
            rows = []
            for number, line in enumerate(lines[1:], start=2):
                if len(line) != len(header):
                    raise JobError(
                        f"{where}: line {number} has {len(line)} fields, the header {len(header)}"
                    )
                rows.append(dict(zip(header, line, strict=True)))
        try:
            check(rows, ListOf(ROW))
        except ShapeError as error:
            raise JobError(f"{where}: {error}", no_retry=True) from None
        return rows
