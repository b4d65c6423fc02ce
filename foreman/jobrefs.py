"""How operators name jobs, kinds and times on the command line.

Job ids are per kind, so a job is `KIND:ID` (`processor:12`); a bare id is
accepted when `--kind` is given or only one kind has a job with that id.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from common.models import JOB_MODELS, Job, job_model
from common.models.choices import JobKind

KIND_ALIASES = {
    "survey": JobKind.SURVEY,
    "surveys": JobKind.SURVEY,
    "surveyor": JobKind.SURVEY,
    "downloader": JobKind.DOWNLOADER,
    "downloaders": JobKind.DOWNLOADER,
    "download": JobKind.DOWNLOADER,
    "processor": JobKind.PROCESSOR,
    "processors": JobKind.PROCESSOR,
}
RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class RefError(ValueError):
    """The operator named something that does not exist or is ambiguous."""


def parse_kind(text: str) -> str:
    try:
        return KIND_ALIASES[text.strip().lower()]
    except KeyError:
        raise RefError(f"unknown job kind {text!r}: use one of {', '.join(JOB_MODELS)}") from None


def job_ref(job: Job) -> str:
    return f"{job.kind}:{job.pk}"


def find_job(text: str, kind: str | None = None) -> Job:
    """The job `text` names: `KIND:ID`, or an id of `kind`, or an id only one kind has."""
    text = text.strip()
    if ":" in text or "/" in text:
        kind_text, _, id_text = text.replace("/", ":").partition(":")
        kind = parse_kind(kind_text)
    else:
        id_text = text
    if not id_text.isdigit():
        raise RefError(f"{text!r} is not a job: write KIND:ID, for example processor:12")
    pk = int(id_text)
    kinds = [kind] if kind else list(JOB_MODELS)
    found = [job for k in kinds for job in job_model(k).objects.filter(pk=pk)]
    if not found:
        where = f"{kind} job" if kind else "job of any kind"
        raise RefError(f"there is no {where} {pk}: see `manage.py jobs list`")
    if len(found) > 1:
        names = ", ".join(job_ref(job) for job in found)
        raise RefError(f"id {pk} is ambiguous ({names}): write KIND:ID or give --kind")
    return found[0]


def parse_when(text: str) -> datetime:
    """An aware datetime from `2026-05-01`, `2026-05-01T12:00`, or an age such as
    `6h`, `2d`, `30m` (that long ago). Naive times are UTC."""
    text = text.strip()
    relative = RELATIVE.match(text)
    if relative:
        amount, unit = float(relative.group(1)), relative.group(2)
        return timezone.now() - timedelta(**{UNITS[unit]: amount})
    parsed = parse_datetime(text.replace(" ", "T"))
    if parsed is None:
        day = parse_date(text)
        if day is not None:
            parsed = datetime(day.year, day.month, day.day)
    if parsed is None:
        raise RefError(
            f"cannot read {text!r} as a time: write 2026-05-01, 2026-05-01T12:00 or an age "
            "such as 6h or 2d"
        )
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=UTC)
    return parsed
