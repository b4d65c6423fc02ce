from django.apps import AppConfig


class ProcessorsConfig(AppConfig):
    name = "processors"
    verbose_name = "Processors"

    def ready(self) -> None:
        """Tell the runner which function runs each pipeline, and which downloader
        task fetches its inputs."""
        from common.models.choices import DownloaderTask, ProcessorPipeline
        from processors.basecalling import (
            basecall_batch,
            output_format,
            pod5_link_names,
            why_dorado_cannot_run,
        )
        from processors.basecalling.engine import (
            local_inputs,
            output_name,
            record_engine_basecalls,
            unknown_outputs,
        )
        from processors.bcl2fastq import demultiplex_run, waits_for_archive
        from processors.dataset_matrix import build_dataset
        from processors.file_summary import summarise_files
        from processors.illumina_run_archive import archive_run
        from processors.salmon_quant import quantify_run, waits_for_index
        from processors.smoke_test import run_smoke_test
        from processors.transcriptome_index import build_long_index, build_short_index
        from runner.registry import EngineWork, register_pipeline

        register_pipeline(
            ProcessorPipeline.TRANSCRIPTOME_INDEX_LONG,
            build_long_index,
            DownloaderTask.TRANSCRIPTOME,
        )
        register_pipeline(
            ProcessorPipeline.TRANSCRIPTOME_INDEX_SHORT,
            build_short_index,
            DownloaderTask.TRANSCRIPTOME,
        )
        register_pipeline(ProcessorPipeline.FILE_SUMMARY, summarise_files, DownloaderTask.FILES)
        register_pipeline(ProcessorPipeline.SMOKE_TEST, run_smoke_test, DownloaderTask.FILES)
        register_pipeline(
            ProcessorPipeline.SALMON_QUANT,
            quantify_run,
            DownloaderTask.FASTQ,
            waits_for=waits_for_index,
        )
        register_pipeline(ProcessorPipeline.DATASET_MATRIX, build_dataset, None)
        register_pipeline(
            ProcessorPipeline.BASECALLING,
            basecall_batch,
            DownloaderTask.POD5_BATCH,
            runs_here=why_dorado_cannot_run,
            needs="a GPU worker with Dorado (REFINERY_DORADO) or a basecalling engine",
            engine=EngineWork(
                input_names=pod5_link_names,
                local_inputs=local_inputs,
                output_format=output_format,
                output_name=output_name,
                unknown_outputs=unknown_outputs,
                record=record_engine_basecalls,
            ),
        )
        register_pipeline(
            ProcessorPipeline.ILLUMINA_RUN_ARCHIVE, archive_run, DownloaderTask.ILLUMINA_RUN
        )
        register_pipeline(
            ProcessorPipeline.BCL2FASTQ,
            demultiplex_run,
            DownloaderTask.ILLUMINA_RUN,
            waits_for=waits_for_archive,
        )
