from django.apps import AppConfig


class SurveyorConfig(AppConfig):
    name = "surveyor"
    verbose_name = "Surveyor"

    def ready(self) -> None:
        """Tell the runner which surveyor surveys each source."""
        from common.models.choices import SurveySource
        from runner.registry import register_source
        from surveyor.ena import EnaSurveyor
        from surveyor.ensembl import EnsemblSurveyor
        from surveyor.illumina_files import MARKER_NAMES
        from surveyor.illumina_folders import scan_illumina_root
        from surveyor.illumina_runs import IlluminaRunsSurveyor
        from surveyor.local_files import LocalFilesSurveyor
        from surveyor.nanopore_runs import NanoporeRunsSurveyor
        from surveyor.nanopore_scan import watch_nanopore_root
        from surveyor.watching import register_scanner

        register_source(SurveySource.ENSEMBL, EnsemblSurveyor)
        register_source(SurveySource.LOCAL_FILES, LocalFilesSurveyor)
        register_source(SurveySource.ENA, EnaSurveyor)
        register_source(SurveySource.NANOPORE_RUNS, NanoporeRunsSurveyor)
        register_scanner(
            SurveySource.NANOPORE_RUNS,
            watch_nanopore_root,
            frozenset({"final_summary_*.txt", "report_*.json", "pod5"}),
            paths_option="paths",
        )
        register_source(SurveySource.ILLUMINA_RUNS, IlluminaRunsSurveyor)
        register_scanner(SurveySource.ILLUMINA_RUNS, scan_illumina_root, MARKER_NAMES)
