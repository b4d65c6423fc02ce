from django.apps import AppConfig


class DownloadersConfig(AppConfig):
    name = "downloaders"
    verbose_name = "Downloaders"

    def ready(self) -> None:
        """Tell the runner which function runs each downloader task."""
        from common.models.choices import DownloaderTask
        from downloaders.fastq import download_fastq
        from downloaders.files import download_files
        from downloaders.illumina_run import download_illumina_run
        from downloaders.pod5_batch import download_pod5_batch
        from downloaders.transcriptome import download_transcriptome
        from runner.registry import register_downloader

        register_downloader(DownloaderTask.TRANSCRIPTOME, download_transcriptome)
        register_downloader(DownloaderTask.FILES, download_files)
        register_downloader(DownloaderTask.FASTQ, download_fastq)
        register_downloader(DownloaderTask.POD5_BATCH, download_pod5_batch)
        register_downloader(DownloaderTask.ILLUMINA_RUN, download_illumina_run)
