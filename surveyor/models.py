"""What surveys remember between two looks at a source.

`Pod5File`: every pod5 file a survey has seen in a Nanopore run folder, with
the size and end signature it had at the last look. A file joins a batch only
once it is complete (its end signature is there and its size did not change
since the previous look); the unique (run, path) and the single `batch` column
make a file recorded twice, or put in two batches, impossible, whatever
surveys run at once.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class Pod5File(models.Model):
    run = models.ForeignKey(
        "common.SequencingRun", on_delete=models.CASCADE, related_name="pod5_files"
    )
    path = models.CharField(max_length=1024, help_text="relative to the run folder")
    size = models.BigIntegerField(help_text="its size at the last look")
    end_signature = models.BooleanField(
        default=False, help_text="whether it ended with the pod5 signature at the last look"
    )
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    batch = models.ForeignKey(
        "common.Batch",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="pod5_files",
        help_text="the batch it joined once complete",
    )

    class Meta:
        ordering = ["run", "path"]
        constraints = [
            models.UniqueConstraint(fields=["run", "path"], name="one_pod5_file_per_run_path")
        ]
        indexes = [
            models.Index(
                fields=["run", "path"],
                name="pod5_file_unbatched",
                condition=models.Q(batch__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.run}: {self.path}"
