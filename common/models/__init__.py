"""The refinery's data model: batches and their files, jobs, organisms, results."""

from common.models.batches import Batch, BatchStatus, OriginalFile
from common.models.choices import DownloaderTask, JobKind, ProcessorPipeline, SurveySource
from common.models.control import PausedKind
from common.models.datasets import Dataset, DatasetState, DatasetValue
from common.models.demultiplexing import DemultiplexStat
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
from common.models.runs import (
    Platform,
    RunState,
    RunStateChange,
    SequencingRun,
    WebhookDelivery,
)
from common.models.samples import Experiment, GeneSet, Quantification, Sample, SkippedRun

__all__ = [
    "JOB_MODELS",
    "Batch",
    "BatchStatus",
    "ComputedFile",
    "Dataset",
    "DatasetState",
    "DatasetValue",
    "DemultiplexStat",
    "DownloaderJob",
    "DownloaderTask",
    "Experiment",
    "GeneSet",
    "Job",
    "JobKind",
    "JobState",
    "Organism",
    "OriginalFile",
    "PausedKind",
    "Platform",
    "ProcessorJob",
    "ProcessorPipeline",
    "Provenance",
    "Quantification",
    "RunState",
    "RunStateChange",
    "Sample",
    "SequencingRun",
    "SkippedRun",
    "SurveyJob",
    "SurveySource",
    "TranscriptomeIndex",
    "WebhookDelivery",
    "job_model",
]
