"""The file-summary pipeline: a report of each downloaded file (size, SHA-256,
lines, and the first line), the smallest real path through the refinery."""

from __future__ import annotations

import gzip
import json

from common.models import ProcessorJob
from processors.pipeline import ProcessorContext, add_computed_file, run_processor


def summarise(context: ProcessorContext) -> ProcessorContext:
    summary = []
    for original in context["original_files"]:
        path = context["raw_paths"][original.pk]
        opener = gzip.open if path.name.endswith(".gz") else open
        lines, first = 0, ""
        with opener(path, "rb") as handle:
            for lines, line in enumerate(handle, start=1):
                if lines == 1:
                    first = line.decode("utf-8", "replace").rstrip()[:200]
        summary.append(
            {
                "filename": original.filename,
                "size": original.size,
                "sha256": original.sha256,
                "lines": lines,
                "first_line": first,
            }
        )
    report = context["work_dir"] / "file_summary.json"
    report.write_text(json.dumps({"files": summary}, indent=2))
    add_computed_file(context, report, "json")
    return context


def summarise_files(job: ProcessorJob) -> ProcessorContext:
    return run_processor(job, [summarise])
