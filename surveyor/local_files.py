"""The `local_files` source: every file under a folder is a batch refined by the
file-summary pipeline. The smallest real path through the refinery, useful to
check a deployment."""

from __future__ import annotations

import argparse
import fnmatch
from collections.abc import Iterable
from pathlib import Path

from common.models.choices import ProcessorPipeline, SurveySource
from runner.pipeline import JobError
from surveyor.external_source import (
    DiscoveredBatch,
    DiscoveredFile,
    ExternalSourceSurveyor,
)


class LocalFilesSurveyor(ExternalSourceSurveyor):
    source = SurveySource.LOCAL_FILES
    help = "every file under a folder becomes a batch summarised by the file_summary pipeline"

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("path", help="the folder to survey")
        parser.add_argument("--pattern", default="*", help="only files matching this glob")

    @classmethod
    def parameters_from_options(cls, options: dict) -> dict:
        path = Path(options["path"]).expanduser().resolve()
        if not path.is_dir():
            raise JobError(f"{options['path']} is not a folder", no_retry=True)
        return {"path": str(path), "pattern": options.get("pattern") or "*"}

    def discover_batches(self) -> Iterable[DiscoveredBatch]:
        root = Path(self.parameters["path"])
        if not root.is_dir():
            raise JobError(f"{root} is not a folder (any more)", no_retry=True)
        pattern = self.parameters.get("pattern", "*")
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            relative = path.relative_to(root).as_posix()
            if path.name.startswith(".") or not fnmatch.fnmatch(path.name, pattern):
                continue
            yield DiscoveredBatch(
                accession=relative,
                pipeline=ProcessorPipeline.FILE_SUMMARY,
                files=[
                    DiscoveredFile(
                        url=path.as_uri(),
                        filename=path.name,
                        raw_format=path.suffix.lstrip("."),
                        expected_size=path.stat().st_size,
                    )
                ],
                metadata={"root": str(root)},
            )
