"""The `pod5_batch` downloader task: copy a batch of a Nanopore run's pod5 files
from the run folder into temporary storage, each checked with the `pod5`
package first (both signatures, it opens, its reads count), and record its
size, SHA-256 and number of reads.

A damaged file (truncated, corrupt, not pod5 at all) fails the job with
`no_retry` and a reason naming it: copying it again cannot mend it. The run's
other batches have jobs of their own and go on.
"""

from __future__ import annotations

from pathlib import Path

from common.models import Batch, DownloaderJob
from common.pod5 import POD5_SIGNATURE
from downloaders.steps import DownloaderContext, run_downloader
from runner.pipeline import JobError


class DamagedPod5(ValueError):
    """A file that is not a whole, readable pod5 file; the message says why."""


def pod5_read_count(path: Path) -> int:
    """The number of reads in a whole pod5 file, after checking both signatures
    and reading every read's id; DamagedPod5 says what is wrong otherwise."""
    import pod5

    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(8)
        handle.seek(max(size - 8, 0))
        tail = handle.read(8)
    if head != POD5_SIGNATURE:
        raise DamagedPod5("it does not start with the pod5 signature (not a pod5 file)")
    if size < 16 or tail != POD5_SIGNATURE:
        raise DamagedPod5("it does not end with the pod5 signature (truncated, or still written)")
    try:
        with pod5.Reader(path) as reader:
            count = 0
            for record in reader.reads():
                record.read_id  # noqa: B018 (reading it is the check)
                count += 1
            if count != reader.num_reads:
                raise DamagedPod5(f"it lists {reader.num_reads} reads but holds {count}")
    except DamagedPod5:
        raise
    except Exception as error:  # the package's own errors (Arrow, its C++ core)
        message = str(error).splitlines()[0][:300] if str(error) else ""
        raise DamagedPod5(
            f"the pod5 package cannot read it: {type(error).__name__}: {message}"
        ) from None
    return count


def verify_pod5(context: DownloaderContext) -> DownloaderContext:
    """The staged copy is a whole pod5 file: count its reads."""
    original = context["original"]
    try:
        context["pod5_reads"] = pod5_read_count(context["staged"])
    except DamagedPod5 as error:
        raise JobError(
            f"{original.filename} ({original.source_url}) is a damaged pod5 file: {error}",
            no_retry=True,
        ) from None
    return context


def record_read_count(context: DownloaderContext) -> DownloaderContext:
    """Beside the size and SHA-256 `store_file` recorded: the reads, per file, in
    the metadata of each batch that has the file."""
    original = context["original"]
    entry = {
        "reads": context.pop("pod5_reads"),
        "size": original.size,
        "sha256": original.sha256,
    }
    for batch in Batch.objects.filter(original_files=original):
        files = dict(batch.metadata.get("pod5_files") or {})
        files[original.filename] = entry
        batch.metadata = {**batch.metadata, "pod5_files": files}
        batch.save(update_fields=["metadata"])
    print(f"{original.filename}: {entry['reads']} read(s)", flush=True)
    return context


def download_pod5_batch(job: DownloaderJob) -> DownloaderContext:
    return run_downloader(job, checks=[verify_pod5], after_store=[record_read_count])
