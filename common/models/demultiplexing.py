"""What demultiplexing a run gave, per lane and sample: the figures of BCL
Convert's Reports/Demultiplex_Stats.csv and Quality_Metrics.csv (or bcl2fastq's
Stats/Stats.json), kept so the API and the admin can show them."""

from __future__ import annotations

from django.db import models

from common.models.lengths import LengthChecked


class DemultiplexStat(LengthChecked):
    """One lane and sample (or `Undetermined`) of one bcl2fastq job."""

    run = models.ForeignKey(
        "common.SequencingRun", on_delete=models.CASCADE, related_name="demultiplex_stats"
    )
    processor_job = models.ForeignKey(
        "common.ProcessorJob", on_delete=models.CASCADE, related_name="demultiplex_stats"
    )
    lane = models.PositiveSmallIntegerField()
    sample_id = models.CharField(max_length=128)
    sample_project = models.CharField(max_length=128, blank=True, default="")
    index = models.CharField(max_length=128, blank=True, default="", help_text="i7-i5")
    reads = models.BigIntegerField()
    perfect_index_reads = models.BigIntegerField(default=0)
    one_mismatch_index_reads = models.BigIntegerField(default=0)
    percent_of_lane = models.FloatField(null=True, blank=True)
    yield_bases = models.BigIntegerField(default=0)
    yield_q30 = models.BigIntegerField(default=0)
    mean_quality = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["lane", "sample_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["processor_job", "lane", "sample_id"], name="one_stat_per_lane_and_sample"
            )
        ]

    def __str__(self) -> str:
        return f"{self.run} lane {self.lane} {self.sample_id}: {self.reads:,} reads"

    @property
    def percent_q30(self) -> float | None:
        return round(100 * self.yield_q30 / self.yield_bases, 2) if self.yield_bases else None
