"""The `local_files` source: every file under a folder is a batch refined by the
file-summary pipeline. The smallest real path through the refinery, useful to
check a deployment.

The survey stays inside its folder: a link whose target lies outside it is
skipped (and the survey's output and log say so); a link inside it stands for
the file it points at, whose real path is the URL recorded. The downloader
refuses a path that has become a link since, and fails without retry, naming
it, on a file it cannot read."""

from __future__ import annotations

import argparse
import fnmatch
import logging
from collections.abc import Iterable
from pathlib import Path

from common.models.choices import ProcessorPipeline, SurveySource
from runner.pipeline import JobError
from surveyor.external_source import (
    DiscoveredBatch,
    DiscoveredFile,
    ExternalSourceSurveyor,
)

logger = logging.getLogger(__name__)


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
        """Every file under the folder (links included, when what they point at is
        in the folder too: the file is then the one they point at)."""
        root = Path(self.parameters["path"])
        if not root.is_dir():
            raise JobError(f"{root} is not a folder (any more)", no_retry=True)
        root = root.resolve()
        pattern = self.parameters.get("pattern", "*")
        for path in sorted(root.rglob("*")):  # rglob does not enter linked folders
            relative = path.relative_to(root).as_posix()
            if path.name.startswith(".") or not fnmatch.fnmatch(path.name, pattern):
                continue
            real = path.resolve()
            if not real.is_relative_to(root):
                what = "folder" if real.is_dir() else "file" if real.is_file() else "missing file"
                self.skip(relative, f"a link to a {what} outside {root}")
                continue
            if not real.is_file():
                continue
            yield DiscoveredBatch(
                accession=relative,
                pipeline=ProcessorPipeline.FILE_SUMMARY,
                files=[
                    DiscoveredFile(
                        url=real.as_uri(),
                        filename=real.name,
                        raw_format=real.suffix.lstrip("."),
                        expected_size=real.stat().st_size,
                        listed_in=f"the folder {root}",
                    )
                ],
                metadata={"root": str(root)},
            )

    def skip(self, relative: str, why: str) -> None:
        """Leave out what the folder holds but the survey must not read, saying so."""
        logger.warning("local_files: skipped %s: %s", relative, why)
        print(f"skipped {relative}: {why}", flush=True)
