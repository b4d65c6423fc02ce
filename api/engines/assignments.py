"""What an engine is told about a job it claimed: the batch's pod5 files (the
links in its ASSIGNED folder, or presigned URLs), the outputs to send back and
where.

The files are read with one statement written once (names from the models'
`_meta`): the same files `processors.basecalling.engine.batch_files` reads,
without building the ORM's query on every assignment. What depends on the
pipeline (the files' names, the outputs) comes from its registered EngineWork.
"""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.db import connection
from rest_framework.request import Request
from rest_framework.reverse import reverse

from common.models import OriginalFile, ProcessorJob
from common.models.sql_rows import model_rows
from common.storage import LocalStorage, temporary_storage
from runner.engines import make_assigned_folder
from runner.pipeline import JobError
from runner.registry import engine_work


@cache
def job_files_sql(vendor: str) -> str:
    """SELECT the original files of a processor job's batches, each once, by id,
    in the SQL of `vendor`'s database."""
    q = connection.ops.quote_name
    files = OriginalFile._meta
    file_batches = files.get_field("batches")
    job_batches = ProcessorJob._meta.get_field("batches")
    return (
        f"SELECT * FROM {q(files.db_table)} WHERE {q(files.pk.column)} IN ("
        f"SELECT fb.{q(file_batches.m2m_column_name())} "
        f"FROM {q(file_batches.m2m_db_table())} fb "
        f"JOIN {q(job_batches.m2m_db_table())} jb "
        f"ON jb.{q(job_batches.m2m_reverse_name())} = fb.{q(file_batches.m2m_reverse_name())} "
        f"WHERE jb.{q(job_batches.m2m_column_name())} = %s"
        f") ORDER BY {q(files.pk.column)}"
    )


def job_files(job: ProcessorJob) -> list[tuple[OriginalFile, str]]:
    """The job's input files, each with its name in the engine's folder (as the
    pipeline names them: `batch_files` for basecalling)."""
    files = model_rows(OriginalFile, job_files_sql(connection.vendor), [job.pk])
    names = engine_work(job.pipeline).input_names(files)
    return [(f, names[f.pk]) for f in files]


def assignment_of(request: Request, job: ProcessorJob, engine: str) -> dict | None:
    """What an engine needs to run `job`, just claimed; None (and the job failed
    with why) when it cannot run: its inputs left temporary storage, say."""
    work = engine_work(job.pipeline)
    try:
        files = job_files(job)
        output = work.output_format()
        paths = work.local_inputs(job, [original for original, _name in files])
        folder = None
        if paths is not None:
            links = {name: paths[original.pk] for original, name in files}
            folder = str(make_assigned_folder(job, engine, links))
    except JobError as error:
        job.mark_failed(error.reason, no_retry=error.no_retry)
        return None
    except OSError as error:
        job.mark_failed(f"cannot make the engine's folder of links: {error}")
        return None
    storage = temporary_storage()
    expires = settings.REFINERY_DOWNLOAD_URL_EXPIRES_S
    args = [engine, job.pk]
    return {
        "job": job.pk,
        "pipeline": job.pipeline,
        "model": settings.REFINERY_DORADO_MODEL,
        "output": output,
        "folder": folder,
        "files": [
            {
                "name": name,
                "size": original.size,
                "sha256": original.sha256,
                "url": None
                if isinstance(storage, LocalStorage)
                else storage.url(original.temp_key, expires_s=expires),
            }
            for original, name in files
        ],
        "outputs": [work.output_name(name, output) for _original, name in files],
        "keepalive": reverse("api:engine-keepalive", args=args, request=request),
        "completed": reverse("api:engine-completed", args=args, request=request),
    }
