"""The names of everything a job can do, and where the code that does it lives.

Implementations are named by dotted path, not imported, so that `common`
never imports the apps that build on it.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import models
from django.utils.module_loading import import_string


class JobKind(models.TextChoices):
    SURVEY = "survey", "survey"
    DOWNLOADER = "downloader", "downloader"
    PROCESSOR = "processor", "processor"


class SurveySource(models.TextChoices):
    ENSEMBL = "ensembl", "Ensembl genomes"
    LOCAL_FILES = "local_files", "files in a local folder"


class DownloaderTask(models.TextChoices):
    TRANSCRIPTOME = "transcriptome", "Ensembl genome and annotation"
    FILES = "files", "files at their URLs"


class ProcessorPipeline(models.TextChoices):
    TRANSCRIPTOME_INDEX_LONG = "transcriptome_index_long", "Salmon index, k=31"
    TRANSCRIPTOME_INDEX_SHORT = "transcriptome_index_short", "Salmon index, k=23"
    FILE_SUMMARY = "file_summary", "file summary"
    SMOKE_TEST = "smoke_test", "smoke test"


SURVEYORS = {
    SurveySource.ENSEMBL: "surveyor.ensembl.EnsemblSurveyor",
    SurveySource.LOCAL_FILES: "surveyor.local_files.LocalFilesSurveyor",
}
DOWNLOADERS = {
    DownloaderTask.TRANSCRIPTOME: "downloaders.transcriptome.download_transcriptome",
    DownloaderTask.FILES: "downloaders.files.download_files",
}
PROCESSORS = {
    ProcessorPipeline.TRANSCRIPTOME_INDEX_LONG: "processors.transcriptome_index.build_long_index",
    ProcessorPipeline.TRANSCRIPTOME_INDEX_SHORT: "processors.transcriptome_index.build_short_index",
    ProcessorPipeline.FILE_SUMMARY: "processors.file_summary.summarise_files",
    ProcessorPipeline.SMOKE_TEST: "processors.smoke_test.run_smoke_test",
}
# The downloader task that fetches the files of a batch needing a pipeline.
DOWNLOADER_FOR_PIPELINE = {
    ProcessorPipeline.TRANSCRIPTOME_INDEX_LONG: DownloaderTask.TRANSCRIPTOME,
    ProcessorPipeline.TRANSCRIPTOME_INDEX_SHORT: DownloaderTask.TRANSCRIPTOME,
    ProcessorPipeline.FILE_SUMMARY: DownloaderTask.FILES,
    ProcessorPipeline.SMOKE_TEST: DownloaderTask.FILES,
}


def surveyor_class(source: str) -> type:
    """The ExternalSourceSurveyor subclass for `source`."""
    return import_string(SURVEYORS[SurveySource(source)])


def downloader_function(task: str) -> Callable[[int], object]:
    return import_string(DOWNLOADERS[DownloaderTask(task)])


def processor_function(pipeline: str) -> Callable[[int], object]:
    return import_string(PROCESSORS[ProcessorPipeline(pipeline)])
