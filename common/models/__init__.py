"""The refinery's data model: batches and their files, jobs, organisms, results."""

from common.models.batches import Batch, BatchStatus, OriginalFile
from common.models.control import PausedKind
from common.models.job_kinds import (
    JOB_MODELS,
    DownloaderJob,
    ProcessorJob,
    SurveyJob,
    job_model,
)
from common.models.jobs import Job, JobState
from common.models.organisms import Organism
from common.models.results import ComputedFile, Provenance, TranscriptomeIndex

__all__ = [
    "JOB_MODELS",
    "Batch",
    "BatchStatus",
    "ComputedFile",
    "DownloaderJob",
    "Job",
    "JobState",
    "Organism",
    "OriginalFile",
    "PausedKind",
    "ProcessorJob",
    "Provenance",
    "SurveyJob",
    "TranscriptomeIndex",
    "job_model",
]
