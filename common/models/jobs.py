"""Jobs: one row per attempt, and the only code that changes a job's state (the
kinds of job are in job_kinds.py).

A job moves created → queued → running → succeeded | failed (and may fail from
any unfinished state). Every change is a conditional UPDATE ("from these states
to that one") made by one method per transition, so two processes racing for
the same job cannot both win, and no other code writes `state`: `save()`
refuses a changed state.
"""

from __future__ import annotations

import contextlib
from typing import ClassVar

from django.db import connection, models, transaction
from django.utils import timezone

from common.models.runs import follow_job, follows_runs
from common.models.sql_rows import model_rows
from common.secrets import redact

FAILURE_REASON_MAX = 4000


class JobState(models.TextChoices):
    CREATED = "created", "created"
    QUEUED = "queued", "queued"
    RUNNING = "running", "running"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"


UNFINISHED = (JobState.CREATED, JobState.QUEUED, JobState.RUNNING)
FINISHED = (JobState.SUCCEEDED, JobState.FAILED)


class IllegalStateWrite(Exception):
    """Code tried to change `state` without a transition method."""


class JobQuerySet(models.QuerySet):
    def unfinished(self) -> JobQuerySet:
        return self.filter(state__in=UNFINISHED)


class Job(models.Model):
    """The fields and transitions every kind of job shares."""

    kind: ClassVar[str]

    state = models.CharField(
        max_length=16, choices=JobState.choices, default=JobState.CREATED, editable=False
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=False)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    start_time = models.DateTimeField(null=True, blank=True)
    end_time = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker_id = models.CharField(max_length=255, blank=True, default="")
    worker_version = models.CharField(max_length=64, blank=True, default="")
    failure_reason = models.TextField(blank=True, default="")
    no_retry = models.BooleanField(default=False)
    interrupted = models.BooleanField(
        default=False, help_text="stopped by its worker (SIGTERM): a retry does not count"
    )
    num_retries = models.PositiveIntegerField(default=0)
    retried_job = models.OneToOneField(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="retry",
        help_text="the attempt this one retries",
    )
    retried = models.BooleanField(default=False, help_text="a later attempt exists")
    ram_mb = models.PositiveIntegerField(default=1024)
    exit_code = models.SmallIntegerField(
        null=True,
        blank=True,
        help_text="the worker process's exit code when it ended without recording an outcome "
        "(128 + N when killed by signal N: 137 is SIGKILL, which the kernel's OOM killer sends)",
    )
    given_up_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="when the refinery gave up on this failed attempt (no retries left, no_retry, "
        "or cancelled): it will not be retried unless an operator asks",
    )
    dispatch_id = models.CharField(max_length=255, blank=True, default="", db_index=True)
    log_location = models.CharField(max_length=1024, blank=True, default="")

    objects = JobQuerySet.as_manager()

    class Meta:
        abstract = True
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.kind} job {self.pk} ({self.state})"

    # --- the one place that writes state ---------------------------------------------------

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._saved_state = self.state if self.pk else JobState.CREATED

    def save(self, *args, **kwargs) -> None:
        if self.state != self._saved_state:
            raise IllegalStateWrite(
                f"{self.kind} job {self.pk}: state {self._saved_state!r} -> {self.state!r} "
                "must go through a transition method (mark_queued, mark_started, ...)"
            )
        update_fields = kwargs.get("update_fields")
        if self.pk and update_fields is None:
            # A full save must never write back a state another process changed since
            # this instance was loaded.
            kwargs["update_fields"] = [
                f.name
                for f in self._meta.concrete_fields
                if not f.primary_key and f.name != "state"
            ]
        elif update_fields is not None and "state" in update_fields:
            raise IllegalStateWrite("save(update_fields=[... 'state' ...]) is not a transition")
        super().save(*args, **kwargs)

    def _transition(self, from_states: tuple[str, ...], to_state: str, **fields) -> bool:
        """Move from one of `from_states` to `to_state`, atomically. Returns whether
        this call made the change; the instance is refreshed either way."""
        follows = self.follows_runs()
        # A job that moves sequencing runs moves them in the same transaction.
        with transaction.atomic() if follows else contextlib.nullcontext():
            changed = (
                type(self)
                .objects.filter(pk=self.pk, state__in=from_states)
                .update(state=to_state, **fields)
            )
            if changed:  # we wrote exactly these values: no need to read them back
                for name, value in fields.items():
                    setattr(self, name, value)
                self.state = self._saved_state = to_state
                if follows:
                    follow_job(self, to_state)
        if not changed:
            self.refresh_from_db()
        return bool(changed)

    def refresh_from_db(self, *args, **kwargs) -> None:
        super().refresh_from_db(*args, **kwargs)
        self._saved_state = self.state

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance._saved_state = instance.state
        return instance

    # --- transitions -------------------------------------------------------------------------

    def mark_queued(self, dispatch_id: str = "") -> bool:
        """Handed to a dispatcher (created → queued)."""
        return self._transition(
            (JobState.CREATED,),
            JobState.QUEUED,
            dispatch_id=dispatch_id,
            dispatched_at=timezone.now(),
        )

    def mark_started(self, worker_id: str, worker_version: str, dispatch_id: str = "") -> bool:
        """A worker took the job (queued → running). A job run by hand may start
        from created. False when someone else already started it."""
        now = timezone.now()
        fields = {
            "worker_id": worker_id[:255],
            "worker_version": worker_version[:64],
            "start_time": now,
            "heartbeat_at": now,
        }
        if dispatch_id:
            fields["dispatch_id"] = dispatch_id[:255]
        return self._transition((JobState.CREATED, JobState.QUEUED), JobState.RUNNING, **fields)

    @classmethod
    def claim_next(
        cls,
        worker_id: str,
        worker_version: str,
        dispatch_id: str,
        skip_pipelines: tuple[str, ...] = (),
        pipelines: tuple[str, ...] = (),
        queued_as: tuple[str, ...] = (),
    ) -> Job | None:
        """Take the oldest queued job of this kind for a worker (queued → running),
        or None when none waits. One statement: on PostgreSQL the candidate row is
        locked with SKIP LOCKED, so workers never wait on each other; on SQLite the
        statement runs under the database's write lock. Either way the state
        condition makes two workers unable to take the same job. Processor jobs of
        `skip_pipelines` (which this worker cannot run) are left for others; with
        `pipelines`, only processor jobs of those are taken (a basecalling engine's
        claim); with `queued_as`, only jobs queued with one of those dispatch ids
        (an engine never takes a job that was sent to a cluster)."""
        table = connection.ops.quote_name(cls._meta.db_table)
        skip_sql, skip_params = "", []
        if skip_pipelines:
            holes = ", ".join(["%s"] * len(skip_pipelines))
            skip_sql, skip_params = f"AND pipeline NOT IN ({holes}) ", list(skip_pipelines)
        if pipelines:
            holes = ", ".join(["%s"] * len(pipelines))
            skip_sql += f"AND pipeline IN ({holes}) "
            skip_params += list(pipelines)
        if queued_as:
            holes = ", ".join(["%s"] * len(queued_as))
            skip_sql += f"AND dispatch_id IN ({holes}) "
            skip_params += list(queued_as)
        skip_locked = " FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        # The partial index's condition is repeated literally so SQLite uses it.
        unfinished = ", ".join(f"'{state}'" for state in UNFINISHED)
        sql = (
            f"UPDATE {table} SET state = 'running', worker_id = %s, worker_version = %s, "
            "start_time = %s, heartbeat_at = %s, dispatch_id = %s "
            f"WHERE id = (SELECT id FROM {table} WHERE state IN ({unfinished}) "
            f"AND state = 'queued' {skip_sql}ORDER BY created_at, id LIMIT 1{skip_locked}) "
            "AND state = 'queued' RETURNING *"
        )
        params = [worker_id[:255], worker_version[:64], now, now, dispatch_id[:255], *skip_params]
        # model_rows turns the returned row into a model instance with Django's converters.
        # The claim and the run it moves (if the job follows one) commit together.
        with transaction.atomic():
            claimed = model_rows(cls, sql, params)
            job = claimed[0] if claimed else None
            if job is not None and job.follows_runs():
                follow_job(job, JobState.RUNNING)
        return job

    def mark_succeeded(self) -> bool:
        """The work is done (running → succeeded)."""
        return self._transition(
            (JobState.RUNNING,), JobState.SUCCEEDED, end_time=timezone.now(), failure_reason=""
        )

    def mark_failed(self, reason: str, no_retry: bool = False) -> bool:
        """The attempt failed (any unfinished state → failed). `reason` says why, in
        words an operator can act on; secrets are masked."""
        return self._transition(
            UNFINISHED,
            JobState.FAILED,
            end_time=timezone.now(),
            failure_reason=redact(reason or "failed without a reason")[:FAILURE_REASON_MAX],
            no_retry=no_retry,
        )

    def mark_interrupted(self, reason: str) -> bool:
        """Stopped from outside (SIGTERM, a spot interruption): failed, but its
        retry does not spend one of the job's retries."""
        return self._transition(
            UNFINISHED,
            JobState.FAILED,
            end_time=timezone.now(),
            failure_reason=redact(reason)[:FAILURE_REASON_MAX],
            interrupted=True,
        )

    def mark_finished(self, success: bool, reason: str = "", no_retry: bool = False) -> bool:
        """The attempt ended: succeeded, or failed with `reason`."""
        return self.mark_succeeded() if success else self.mark_failed(reason, no_retry)

    # --- bookkeeping that is not a state change ------------------------------------------------

    def beat(self) -> bool:
        """Record that the worker running this job is alive."""
        return type(self).beat_running(self.pk)

    @classmethod
    def beat_running(cls, job_id: int, worker_id: str = "") -> bool:
        """Write job `job_id`'s heartbeat while it runs (and, given `worker_id`, on
        that worker: an engine's keepalive); whether it did. One UPDATE written by
        hand: every running job's worker or engine sends one every few seconds."""
        table = connection.ops.quote_name(cls._meta.db_table)
        sql = f"UPDATE {table} SET heartbeat_at = %s WHERE id = %s AND state = %s"
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        params = [now, job_id, JobState.RUNNING]
        if worker_id:
            sql += " AND worker_id = %s"
            params.append(worker_id)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.rowcount == 1

    def set_log_location(self, location: str) -> None:
        type(self).objects.filter(pk=self.pk).update(log_location=location)
        self.log_location = location

    def set_exit_code(self, code: int) -> None:
        """Record how the worker process ended (before recording the failure it implies)."""
        type(self).objects.filter(pk=self.pk).update(exit_code=code)
        self.exit_code = code

    def give_up(self) -> bool:
        """Settle a failed, unretried attempt for good: the Foreman will not retry it.
        Returns whether this call settled it (false when another process did, or it
        was retried meanwhile)."""
        now = timezone.now()
        with transaction.atomic():
            settled = (
                type(self)
                .objects.filter(
                    pk=self.pk, state=JobState.FAILED, retried=False, given_up_at__isnull=True
                )
                .update(given_up_at=now)
            )
            if settled:
                self.given_up_at = now
                if self.follows_runs():
                    follow_job(self, "given_up")
        return bool(settled)

    def run_rule_name(self) -> str:
        """The task or pipeline name `common.models.runs.JOB_RULES` knows this job by."""
        return ""

    def follows_runs(self) -> bool:
        """Whether this job's changes move a sequencing run's state."""
        return follows_runs(self.kind, self.run_rule_name())

    def new_attempt_fields(self) -> dict:
        """The fields a retry of this attempt starts with (its kind adds its own)."""
        return {
            "num_retries": self.num_retries + (0 if self.interrupted else 1),
            "retried_job": self,
            "ram_mb": self.ram_mb,
        }

    @transaction.atomic
    def create_retry(self, ram_mb: int | None = None) -> Job | None:
        """A new attempt of this failed job, with the same batches, or None when
        another process retried it first."""
        claimed = (
            type(self)
            .objects.filter(pk=self.pk, state=JobState.FAILED, retried=False)
            .update(retried=True)
        )
        if not claimed:
            return None
        self.retried = True
        fields = self.new_attempt_fields()
        if ram_mb:
            fields["ram_mb"] = ram_mb
        retry = type(self).objects.create(**fields)
        retry.copy_relations_from(self)
        return retry

    def copy_relations_from(self, other: Job) -> None:
        """Give a retry the same batches; kinds with batches override this."""

    @property
    def attempts(self) -> list[Job]:
        """The whole chain of attempts this one belongs to, first attempt first."""
        first = self
        while first.retried_job_id:
            first = first.retried_job
        chain = [first]
        while True:
            try:
                chain.append(chain[-1].retry)
            except type(self).DoesNotExist:
                return chain

    @property
    def duration(self):
        if self.start_time and self.end_time:
            return self.end_time - self.start_time
        return None
