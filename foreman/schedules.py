"""Scheduled surveys in the embedded deployment: when the dispatcher is local,
each Foreman pass starts the surveys of REFINERY_SCHEDULED_SURVEYS that are due
(on Nomad, each is a periodic job of its own: see runner/nomad/specs.py).

A schedule's due times count from when a Foreman first saw it (a schedule added
on a Tuesday does not run at once for the Monday it never had). Each due time
is started at most once: the schedule's row records the last due time started,
and a Foreman moves it forward with a conditional UPDATE in the same
transaction that creates the survey job, so two Foremen cannot both start it,
and a crash leaves either both or neither. A Foreman that was down when a
survey was due starts it once when it is back (several missed due times are
one run: the latest).
"""

from __future__ import annotations

import argparse
import logging
import shlex
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.utils import timezone

from common.models import SurveyJob
from foreman.models import SurveySchedule
from runner.dispatch import send_job
from runner.nomad.specs import ScheduledSurvey, scheduled_surveys
from runner.pipeline import JobError
from runner.registry import NotRegistered, surveyor_class

logger = logging.getLogger("refinery.foreman")


def schedule_zone() -> ZoneInfo:
    name = settings.REFINERY_SCHEDULED_SURVEYS_TIME_ZONE
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ImproperlyConfigured(
            f"REFINERY_SCHEDULED_SURVEYS_TIME_ZONE {name!r} is no time zone (e.g. UTC, "
            "Europe/Berlin)"
        ) from None


def cron_times(cron: str, start: datetime) -> croniter:
    """An iterator over `cron`'s times after `start`, in the schedule's time zone.
    Six or seven fields are Nomad's: seconds first (and a year last)."""
    try:
        return croniter(
            cron,
            start.astimezone(schedule_zone()),
            second_at_beginning=len(cron.split()) > 5,
        )
    except (CroniterError, ValueError, KeyError) as error:
        raise ImproperlyConfigured(f"cron {cron!r} cannot be read: {error}") from None


def next_due(cron: str, after: datetime) -> datetime:
    return cron_times(cron, after).get_next(datetime)


def latest_due(cron: str, after: datetime, now: datetime) -> datetime | None:
    """The last due time in (after, now], or None when there is none."""
    times = cron_times(cron, after)
    latest = None
    while True:
        moment = times.get_next(datetime)
        if moment > now:
            return latest
        latest = moment


class ArgsError(ValueError):
    pass


class QuietParser(argparse.ArgumentParser):
    """An argument parser that raises instead of printing and exiting."""

    def error(self, message: str):
        raise ArgsError(message)


def survey_parameters(survey: ScheduledSurvey) -> tuple[str, dict]:
    """The source and SurveyJob parameters of a schedule's `manage.py survey` args."""
    source, *args = survey.args
    surveyor = surveyor_class(source)
    parser = QuietParser(prog=f"survey {source}", add_help=False)
    surveyor.add_arguments(parser)
    try:
        options = vars(parser.parse_args(args))
    except ArgsError as error:
        raise JobError(f"args {shlex.join(survey.args)}: {error}") from None
    return source, surveyor.parameters_from_options(options)


@dataclass(frozen=True)
class ScheduleStatus:
    name: str
    cron: str
    args: tuple[str, ...]
    last_due_at: datetime | None
    last_started_at: datetime | None
    last_job_id: int | None
    last_error: str
    next_due_at: datetime | None


def schedule_row(survey: ScheduledSurvey, now: datetime) -> SurveySchedule:
    try:
        with transaction.atomic():
            row, _ = SurveySchedule.objects.get_or_create(
                name=survey.name, defaults={"cron": survey.cron, "first_seen_at": now}
            )
    except IntegrityError:  # another Foreman made it first
        row = SurveySchedule.objects.get(name=survey.name)
    return row


def start_due_surveys(now: datetime | None = None) -> int:
    """Start every scheduled survey that is due; returns how many were started."""
    now = now or timezone.now()
    started = 0
    rows = {row.name: row for row in SurveySchedule.objects.all()}  # one read per pass
    for survey in scheduled_surveys():
        row = rows.get(survey.name) or schedule_row(survey, now)
        since = row.last_due_at or row.first_seen_at
        due = latest_due(survey.cron, since, now)
        if due is None:
            continue
        if start_survey(survey, row, due, now):
            started += 1
    return started


def start_survey(survey: ScheduledSurvey, row: SurveySchedule, due: datetime, now) -> bool:
    """Claim `due` for this Foreman and create the survey job, in one transaction;
    False when another Foreman claimed it first."""
    try:
        source, parameters = survey_parameters(survey)
        error = ""
    except (JobError, NotRegistered) as problem:
        source, parameters = "", {}
        error = problem.reason if isinstance(problem, JobError) else str(problem)
    with transaction.atomic():
        claimed = SurveySchedule.objects.filter(pk=row.pk, last_due_at=row.last_due_at).update(
            last_due_at=due, last_started_at=now, cron=survey.cron, last_error=error
        )
        if not claimed:
            return False
        if error:  # the due time is spent: the next one tries again, after a fix
            logger.error("scheduled survey %s could not start: %s", survey.name, error)
            return False
        job = SurveyJob.objects.create(source=source, parameters=parameters)
        SurveySchedule.objects.filter(pk=row.pk).update(last_job=job)
        send_job(job)  # after commit (the outbox)
    logger.info("scheduled survey %s (due %s): survey job %s", survey.name, due, job.pk)
    return True


def schedule_statuses(now: datetime | None = None) -> list[ScheduleStatus]:
    """Each configured schedule, with its last and next run."""
    now = now or timezone.now()
    rows = {row.name: row for row in SurveySchedule.objects.all()}
    statuses = []
    for survey in scheduled_surveys():
        row = rows.get(survey.name)
        since = (row.last_due_at or row.first_seen_at) if row else now
        statuses.append(
            ScheduleStatus(
                name=survey.name,
                cron=survey.cron,
                args=survey.args,
                last_due_at=row.last_due_at if row else None,
                last_started_at=row.last_started_at if row else None,
                last_job_id=row.last_job_id if row else None,
                last_error=row.last_error if row else "",
                next_due_at=next_due(survey.cron, since),
            )
        )
    return statuses
