"""The names a job row stores: its kind, and the source, downloader task or
pipeline it runs. They are the columns' choices, so they live with the models;
which code runs each name is the runner's registry's business."""

from __future__ import annotations

from django.db import models


class JobKind(models.TextChoices):
    SURVEY = "survey", "survey"
    DOWNLOADER = "downloader", "downloader"
    PROCESSOR = "processor", "processor"


class SurveySource(models.TextChoices):
    ENSEMBL = "ensembl", "Ensembl genomes"
    LOCAL_FILES = "local_files", "files in a local folder"
    ENA = "ena", "ENA read runs"
    ILLUMINA_RUNS = "illumina_runs", "Illumina run folders"
    NANOPORE_RUNS = "nanopore_runs", "Nanopore (MinKNOW) run folders"
    DATASETS = "datasets", "datasets asked for through the API"


class DownloaderTask(models.TextChoices):
    TRANSCRIPTOME = "transcriptome", "Ensembl genome and annotation"
    FILES = "files", "files at their URLs"
    FASTQ = "fastq", "a run's FASTQ files from ENA"
    ILLUMINA_RUN = "illumina_run", "an Illumina run folder, archived"
    POD5_BATCH = "pod5_batch", "a batch of a Nanopore run's pod5 files"


class ProcessorPipeline(models.TextChoices):
    TRANSCRIPTOME_INDEX_LONG = "transcriptome_index_long", "Salmon index, k=31"
    TRANSCRIPTOME_INDEX_SHORT = "transcriptome_index_short", "Salmon index, k=23"
    FILE_SUMMARY = "file_summary", "file summary"
    SMOKE_TEST = "smoke_test", "smoke test"
    SALMON_QUANT = "salmon_quant", "Salmon quantification of an RNA-seq run"
    ILLUMINA_RUN_ARCHIVE = "illumina_run_archive", "Illumina run archive, verified"
    BCL2FASTQ = "bcl2fastq", "Illumina base calls to demultiplexed FASTQ"
    BASECALLING = "basecalling", "Nanopore basecalling with Dorado"
    DATASET_MATRIX = "dataset_matrix", "a dataset's gene-by-sample matrix"
