"""Sequencing runs from the lab's own instruments (Illumina run folders, Nanopore
MinKNOW runs), their state with its history, and the webhook deliveries each
change of state owes.

A run's state is moved in exactly one place, `SequencingRun.move_to`: a
conditional UPDATE ("from these states to that one"), a history row and the
webhook deliveries, in one transaction. Surveys call it for what they see in the
folder (sequencing, complete, failed by the instrument); jobs call it through
`follow_job`, from inside the job's own transition, so a run's state and the job
that caused it change together or not at all.
"""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from common.models.choices import DownloaderTask, JobKind, ProcessorPipeline
from common.models.lengths import LengthChecked
from common.secrets import redact

REASON_MAX = 2000


class Platform(models.TextChoices):
    ILLUMINA = "illumina", "Illumina"
    NANOPORE = "nanopore", "Oxford Nanopore"


class RunState(models.TextChoices):
    SEQUENCING = "sequencing", "sequencing"
    COMPLETE = "complete", "complete"
    ARCHIVING = "archiving", "archiving"
    ARCHIVED = "archived", "archived"
    DEMULTIPLEXING = "demultiplexing", "demultiplexing"
    DEMULTIPLEXED = "demultiplexed", "demultiplexed"
    BASECALLING = "basecalling", "basecalling"
    BASECALLED = "basecalled", "basecalled"
    FAILED = "failed", "failed"


S = RunState
# The states a run may move to each state from. `failed` is reachable from every
# other state; a failed run goes on when an operator retries its job, so the
# states jobs move a run to may follow `failed`.
ALLOWED_FROM: dict[str, tuple[str, ...]] = {
    S.SEQUENCING: (),
    S.COMPLETE: (S.SEQUENCING,),
    S.ARCHIVING: (S.COMPLETE, S.FAILED),
    S.ARCHIVED: (S.COMPLETE, S.ARCHIVING, S.FAILED),
    S.DEMULTIPLEXING: (S.ARCHIVED, S.DEMULTIPLEXED, S.FAILED),
    S.DEMULTIPLEXED: (S.DEMULTIPLEXING, S.ARCHIVED),
    S.BASECALLING: (S.SEQUENCING, S.COMPLETE, S.FAILED),
    S.BASECALLED: (S.BASECALLING, S.COMPLETE),
    S.FAILED: tuple(state for state in RunState.values if state != S.FAILED),
}


class SequencingRun(LengthChecked):
    """One run of one of the lab's sequencers, found by a survey of its folder."""

    platform = models.CharField(max_length=16, choices=Platform.choices)
    run_id = models.CharField(
        max_length=255,
        help_text="Illumina: RunInfo.xml Run@Id (e.g. 230101_A01234_0042_AHXXXXXXX); "
        "Nanopore: the protocol run id",
    )
    flowcell = models.CharField(max_length=64, blank=True, default="")
    instrument_id = models.CharField(max_length=64, blank=True, default="")
    instrument_type = models.CharField(max_length=64, blank=True, default="")
    run_number = models.PositiveIntegerField(null=True, blank=True)
    run_date = models.DateTimeField(null=True, blank=True)
    location = models.CharField(max_length=2048, help_text="the run folder's path")
    read_structure = models.JSONField(
        default=list,
        blank=True,
        help_text='each read in order: {"number", "cycles", "is_index", "is_reverse_complement"}',
    )
    lanes = models.PositiveSmallIntegerField(null=True, blank=True)
    tiles = models.JSONField(default=list, blank=True, help_text='e.g. ["1_1101", "1_1102"]')
    sample_sheet = models.TextField(blank=True, default="", help_text="the sample sheet's text")
    sample_sheet_sha256 = models.CharField(max_length=64, blank=True, default="")
    metadata = models.JSONField(
        default=dict, blank=True, help_text="what else the run's files say (kit, sample, …)"
    )
    state = models.CharField(
        max_length=16, choices=RunState.choices, default=RunState.SEQUENCING, editable=False
    )
    state_reason = models.TextField(blank=True, default="", editable=False)
    state_changed_at = models.DateTimeField(default=timezone.now, editable=False)
    survey_job = models.ForeignKey(
        "common.SurveyJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-run_date", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["platform", "run_id"], name="one_run_per_run_id")
        ]
        indexes = [models.Index(fields=["state", "state_changed_at"])]

    def __str__(self) -> str:
        return self.run_id

    def save(self, *args, **kwargs) -> None:
        # State moves only through move_to: a full save never writes it back.
        if self.pk and kwargs.get("update_fields") is None:
            kwargs["update_fields"] = [
                f.name
                for f in self._meta.concrete_fields
                if not f.primary_key and f.name not in ("state", "state_reason", "state_changed_at")
            ]
        super().save(*args, **kwargs)

    @classmethod
    def find_or_create(
        cls, platform: str, run_id: str, reason: str, job, **fields
    ) -> tuple[SequencingRun, bool]:
        """The run's row, and whether this call made it. A new run starts its history
        at `sequencing` (and queues its webhooks) in the transaction that creates
        it. Two surveys racing: the unique (platform, run_id) decides, and the
        loser reads the winner's row."""
        existing = cls.objects.filter(platform=platform, run_id=run_id).first()
        if existing is not None:
            return existing, False
        try:
            with transaction.atomic():
                run = cls.objects.create(platform=platform, run_id=run_id, survey_job=job, **fields)
                RunStateChange.objects.create(
                    run=run,
                    old_state="",
                    new_state=RunState.SEQUENCING,
                    reason=redact(reason)[:REASON_MAX],
                    at=run.state_changed_at,
                    job_kind=getattr(job, "kind", "") or "",
                    job_id=getattr(job, "pk", None),
                ).queue_webhooks()
        except IntegrityError:
            return cls.objects.get(platform=platform, run_id=run_id), False
        return run, True

    def move_to(self, state: str, reason: str = "", job=None) -> bool:
        """Move the run to `state` if the state it is in allows it, record the
        change in its history and queue the webhooks' deliveries, in one
        transaction. Returns whether this call made the change (False when the
        run is already there or cannot go there from where it is)."""
        state = RunState(state)
        reason = redact(reason)[:REASON_MAX]
        now = timezone.now()
        with transaction.atomic():
            old = (
                type(self)
                .objects.filter(pk=self.pk, state__in=ALLOWED_FROM[state])
                .values_list("state", flat=True)
                .select_for_update()
                .first()
            )
            if old is None:
                self.refresh_state()
                return False
            type(self).objects.filter(pk=self.pk).update(
                state=state, state_reason=reason, state_changed_at=now
            )
            change = RunStateChange.objects.create(
                run=self,
                old_state=old,
                new_state=state,
                reason=reason,
                at=now,
                job_kind=getattr(job, "kind", "") or "",
                job_id=getattr(job, "pk", None),
            )
            change.queue_webhooks()
        self.state, self.state_reason, self.state_changed_at = state, reason, now
        return True

    def refresh_state(self) -> None:
        row = (
            type(self)
            .objects.filter(pk=self.pk)
            .values("state", "state_reason", "state_changed_at")
        )
        for name, value in (row.first() or {}).items():
            setattr(self, name, value)

    @property
    def history(self) -> models.QuerySet:
        return self.state_changes.order_by("at", "id")

    def latest_demultiplex_stats(self) -> models.QuerySet:
        """The figures per lane and sample of the run's latest demultiplexing job
        (none before one succeeded), in one query."""
        stats = self.demultiplex_stats
        latest = stats.order_by("-processor_job_id").values("processor_job_id")[:1]
        return stats.filter(processor_job_id=models.Subquery(latest))


class RunStateChange(models.Model):
    """One change of a run's state: when, from what to what, why, and which job."""

    run = models.ForeignKey(SequencingRun, on_delete=models.CASCADE, related_name="state_changes")
    old_state = models.CharField(max_length=16, blank=True, default="")
    new_state = models.CharField(max_length=16, choices=RunState.choices)
    reason = models.TextField(blank=True, default="")
    at = models.DateTimeField(default=timezone.now)
    job_kind = models.CharField(max_length=16, blank=True, default="")
    job_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        old = self.old_state or "(new)"
        return f"{self.run}: {old} → {self.new_state} at {self.at:%Y-%m-%d %H:%M:%S %Z}"

    def queue_webhooks(self) -> None:
        """One delivery per URL in REFINERY_RUN_WEBHOOKS, sent later by the Foreman."""
        urls = getattr(settings, "REFINERY_RUN_WEBHOOKS", []) or []
        WebhookDelivery.objects.bulk_create(
            WebhookDelivery(state_change=self, url=url, next_attempt_at=self.at) for url in urls
        )


class WebhookDelivery(models.Model):
    """An outbox row: one state change owed to one webhook URL. The Foreman sends
    due rows and backs off on failure, so a webhook that is down delays nothing
    and loses nothing."""

    state_change = models.ForeignKey(
        RunStateChange, on_delete=models.CASCADE, related_name="deliveries"
    )
    url = models.CharField(max_length=2048)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="webhook_undelivered",
                condition=models.Q(delivered_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.state_change} → {redact(self.url)}"


# --- how jobs move runs ------------------------------------------------------------------

# (job kind, task or pipeline, what happened to the job) → the run's new state.
# "given_up" is a failed attempt the refinery will not retry.
JOB_RULES: dict[tuple[str, str, str], str] = {
    (JobKind.DOWNLOADER, DownloaderTask.ILLUMINA_RUN, "running"): S.ARCHIVING,
    (JobKind.DOWNLOADER, DownloaderTask.ILLUMINA_RUN, "given_up"): S.FAILED,
    (JobKind.PROCESSOR, ProcessorPipeline.ILLUMINA_RUN_ARCHIVE, "succeeded"): S.ARCHIVED,
    (JobKind.PROCESSOR, ProcessorPipeline.ILLUMINA_RUN_ARCHIVE, "given_up"): S.FAILED,
    (JobKind.PROCESSOR, ProcessorPipeline.BCL2FASTQ, "running"): S.DEMULTIPLEXING,
    (JobKind.PROCESSOR, ProcessorPipeline.BCL2FASTQ, "succeeded"): S.DEMULTIPLEXED,
    (JobKind.PROCESSOR, ProcessorPipeline.BCL2FASTQ, "given_up"): S.FAILED,
    (JobKind.DOWNLOADER, DownloaderTask.POD5_BATCH, "given_up"): S.FAILED,
    (JobKind.PROCESSOR, ProcessorPipeline.BASECALLING, "running"): S.BASECALLING,
    (JobKind.PROCESSOR, ProcessorPipeline.BASECALLING, "succeeded"): S.BASECALLED,
    (JobKind.PROCESSOR, ProcessorPipeline.BASECALLING, "given_up"): S.FAILED,
}


def basecalling_finished(run: SequencingRun) -> bool:
    """A Nanopore run is basecalled once it is complete (its final summary was
    seen: the survey records `metadata["complete"]`, since the run may already be
    `basecalling` then) and every one of its batches is processed."""
    from common.models.batches import BatchStatus

    if not run.metadata.get("complete"):
        return False
    batches = run.batches.all()
    return batches.exists() and not batches.exclude(status=BatchStatus.PROCESSED).exists()


# A rule whose target state is here applies only when the condition holds for the
# run, read under a lock on the run's row: two jobs of one run finishing at once
# check one after the other, so the last one sees the other's batch processed.
RULE_CONDITIONS = {S.BASECALLED: basecalling_finished}

# Names whose jobs may move a run: other jobs skip the lookup entirely.
FOLLOWED = {(kind, name) for kind, name, _ in JOB_RULES}


def follows_runs(kind: str, name: str) -> bool:
    return (kind, name) in FOLLOWED


def follow_job(job, event: str) -> None:
    """Move the runs of `job`'s batches as JOB_RULES says for `event` ("running",
    "succeeded", "failed" or "given_up"). Called inside the job's own transition."""
    name = job.run_rule_name()
    target = JOB_RULES.get((job.kind, name, event))
    if target is None:
        return
    runs = SequencingRun.objects.filter(batches__in=job.batches.all()).distinct()
    if target == S.FAILED:
        reason = f"{job.kind} job {job.pk} ({name}) gave up: {job.failure_reason}"
    else:
        reason = f"{job.kind} job {job.pk} ({name}) {event}"
    condition = RULE_CONDITIONS.get(target)
    for run in runs:
        if condition is not None:
            run = SequencingRun.objects.select_for_update().get(pk=run.pk)
            if not condition(run):
                continue
        run.move_to(target, reason, job=job)
