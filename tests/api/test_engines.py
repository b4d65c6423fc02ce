"""The engine API (/api/engines/): basecalling engines that pull work, backed by
the same ProcessorJobs as every worker.

The requests go through Django's test client (the whole view stack: token
authentication, parsers, serializers); the outputs an engine sends are made the
way `manage.py basecall_engine` makes them, by running Dorado on the ASSIGNED
folder and splitting its calls per pod5 file. Dorado cannot be installed here
(a download from its maker, and it needs a GPU): the Dorado stand-in
(tests/processors/standins/dorado) follows its command line and output and
reads the real pod5 files. The separate-process test with live engines is in
tests/processors/test_basecall_engine.py.
"""

from __future__ import annotations

import gzip
import io
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from api.engines import auth
from api.models import Engine
from common.models import Batch, BatchStatus, ComputedFile, JobState, ProcessorJob
from common.storage import permanent_storage
from foreman.passes import Foreman
from processors.basecalling.dorado import basecaller_command, run_basecaller
from processors.basecalling.reads import split_calls
from processors.pipeline import result_prefix
from tests.nanopore import install_dorado_standin, queued_basecalling_jobs

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def engine_setup(tmp_path, refinery_dirs, settings, monkeypatch):
    for name in ("OOM_ONCE", "FILTER_EVERY", "LOSE_EVERY", "CALLS"):
        monkeypatch.delenv(f"DORADO_STANDIN_{name}", raising=False)
    settings.REFINERY_DORADO = str(install_dorado_standin(tmp_path / "bin"))
    settings.REFINERY_ENGINE_ASSIGNED_DIR = tmp_path / "engines"
    return queued_basecalling_jobs(tmp_path / "minknow", files=3, reads=4, batch_files=1)


def add_engine(name: str) -> str:
    out = io.StringIO()
    call_command("engines", "add", name, stdout=out, stderr=io.StringIO())
    return out.getvalue().strip()


def client_of(token: str | None) -> APIClient:
    client = APIClient()
    if token:
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def basecalled_outputs(assignment: dict, where: Path) -> list[Path]:
    """What an engine sends for `assignment`: Dorado's calls on the ASSIGNED
    folder, one gzip FASTQ per pod5 file (as processors/basecalling/remote.py)."""
    from django.conf import settings

    where.mkdir(parents=True, exist_ok=True)
    command = basecaller_command(settings.REFINERY_DORADO, "hac", Path(assignment["folder"]), True)
    run_basecaller(command, where / "calls.fastq", where / "dorado.log")
    outputs = {
        f["name"]: where / name
        for f, name in zip(assignment["files"], assignment["outputs"], strict=True)
    }
    split_calls(where / "calls.fastq", outputs)
    return list(outputs.values())


def complete(client: APIClient, assignment: dict, outputs: list[Path], **fields):
    data = {"success": "true", "dorado_version": "0.9.6+0949eb8", "model": "hac", **fields}
    data["outputs"] = [io.BytesIO(p.read_bytes()) for p in outputs]
    for handle, path in zip(data["outputs"], outputs, strict=True):
        handle.name = path.name
    return client.post(assignment["completed"], data, format="multipart")


def test_an_engine_is_assigned_a_batch_completes_it_and_a_replay_changes_nothing(
    engine_setup, tmp_path
):
    token = add_engine("gpu1")
    client = client_of(token)
    answer = client.post("/api/engines/gpu1/assign", {}, format="json")
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["report_every_s"] > 0 and len(body["jobs"]) == 1
    assignment = body["jobs"][0]
    job = ProcessorJob.objects.get(pk=assignment["job"])
    assert (job.state, job.worker_id) == (JobState.RUNNING, "engine:gpu1")
    assert job.dispatch_id.startswith("engine:gpu1:")
    # BCManager's folder: links to the batch's pod5 files, named as Dorado's fn:Z: will be.
    folder = Path(assignment["folder"])
    assert folder.name == f"ASSIGNED_{job.pk}_gpu1"
    links = sorted(folder.iterdir())
    assert [p.name for p in links] == [f["name"] for f in assignment["files"]]
    assert all(p.is_symlink() and p.resolve().is_file() for p in links)
    assert assignment["outputs"] == [f["name"].replace(".pod5", ".fastq.gz") for f in
                                     assignment["files"]]  # fmt: skip
    # The run moved with the job's claim, as the job's transitions move it.
    assert job.batches.get().sequencing_run.state == "basecalling"

    before = job.heartbeat_at
    assert client.post(assignment["keepalive"]).status_code == 200
    job.refresh_from_db()
    assert job.heartbeat_at > before

    outputs = basecalled_outputs(assignment, tmp_path / "engine")
    answer = complete(client, assignment, outputs, basecalled="4", filtered="0")
    assert answer.status_code == 200, answer.content
    assert answer.json()["results"] == assignment["outputs"]
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED
    results = list(ComputedFile.objects.filter(processor_job=job))
    assert [r.filename for r in results] == assignment["outputs"]
    provenance = results[0].provenance
    assert provenance.tools == {"dorado": "0.9.6+0949eb8"}
    assert provenance.parameters["engine"] == "gpu1"
    assert (provenance.parameters["reads_in"], provenance.parameters["reads_called"]) == (4, 4)
    with permanent_storage().open(results[0].key) as stream:
        assert gzip.decompress(stream.read()) == gzip.decompress(outputs[0].read_bytes())
    assert job.batches.get().status == BatchStatus.PROCESSED
    assert not folder.exists()

    # The same completion again (a replay, or a retry after a lost answer): 409, nothing changes.
    again = complete(client, assignment, outputs, basecalled="4")
    assert again.status_code == 409
    assert "succeeded, not running" in again.json()["detail"]
    assert ComputedFile.objects.filter(processor_job=job).count() == 1
    assert client.post(assignment["keepalive"]).status_code == 409


def test_outputs_with_a_read_missing_fail_the_job_and_record_nothing(engine_setup, tmp_path):
    client = client_of(add_engine("gpu1"))
    assignment = client.post("/api/engines/gpu1/assign").json()["jobs"][0]
    outputs = basecalled_outputs(assignment, tmp_path / "engine")
    records = gzip.decompress(outputs[0].read_bytes()).split(b"\n")
    missing_id = records[4][1:].split(b"\t")[0].decode()  # the second read's id
    outputs[0].write_bytes(gzip.compress(b"\n".join(records[:4] + records[8:])))

    answer = complete(client, assignment, outputs)
    assert answer.status_code == 422
    job = ProcessorJob.objects.get(pk=assignment["job"])
    assert job.state == JobState.FAILED
    assert "1 read(s) of the input have no basecall" in job.failure_reason
    assert missing_id in job.failure_reason and missing_id in answer.json()["detail"]
    assert not ComputedFile.objects.exists()
    assert not list(permanent_storage().list(result_prefix(job)))
    assert job.batches.get().status != BatchStatus.PROCESSED


def test_anonymous_other_engines_and_malformed_completions_are_refused(engine_setup, tmp_path):
    one, two = client_of(add_engine("gpu1")), client_of(add_engine("gpu2"))
    anonymous = client_of(None)
    assert anonymous.get("/api/engines/heartbeat").json()["alive"] is True
    answer = anonymous.post("/api/engines/gpu1/assign")
    assert answer.status_code == 401 and answer["WWW-Authenticate"] == "Token"
    assert client_of("0" * 40).post("/api/engines/gpu1/assign").status_code == 401

    assert two.post("/api/engines/gpu1/assign").status_code == 403  # another engine's name
    assignment = one.post("/api/engines/gpu1/assign").json()["jobs"][0]
    job_id = assignment["job"]
    assert anonymous.post(assignment["keepalive"]).status_code == 401
    assert two.post(assignment["keepalive"]).status_code == 403
    # gpu2, at its own URLs, cannot reach gpu1's job: it is not its job.
    for what in ("keepalive", "completed"):
        answer = two.post(f"/api/engines/gpu2/jobs/{job_id}/{what}", {"success": "false"})
        assert answer.status_code == 404, what
        assert answer.json()["detail"] == f"engine gpu2 has no job {job_id}"

    # A completion that names outputs of no pod5 file of the job: 400, the job runs on.
    second = assignment
    stray = tmp_path / "stray.fastq.gz"
    stray.write_bytes(gzip.compress(b""))
    answer = complete(one, second, [stray])
    assert answer.status_code == 400
    assert "is not the output of a pod5 file" in str(answer.json()["outputs"])
    assert ProcessorJob.objects.get(pk=second["job"]).state == JobState.RUNNING
    answer = one.post(second["completed"], {"success": "true"})
    assert answer.status_code == 400  # success without outputs

    # A completion being recorded (or one whose request died half-way): another is
    # refused, and the job waits for its keepalives to stop.
    job = ProcessorJob.objects.get(pk=second["job"])
    ProcessorJob.objects.filter(pk=job.pk).update(dispatch_id=job.dispatch_id + ":completing")
    answer = one.post(second["completed"], {"success": "false", "reason": "late"})
    assert answer.status_code == 409 and "is being recorded already" in answer.json()["detail"]
    job.refresh_from_db()
    assert (job.state, job.failure_reason) == (JobState.RUNNING, "")
    assert ProcessorJob.objects.get(pk=second["job"]).state == JobState.RUNNING


def test_an_engines_failure_and_interruption_are_recorded_with_its_reason(engine_setup):
    client = client_of(add_engine("gpu1"))
    jobs = client.post("/api/engines/gpu1/assign", {"batch_size": 2}, format="json").json()["jobs"]
    assert len(jobs) == 2
    failed, interrupted = jobs
    answer = client.post(failed["completed"], {"success": "false", "reason": "CUDA error 700"})
    assert answer.status_code == 200
    row = ProcessorJob.objects.get(pk=failed["job"])
    assert (row.state, row.failure_reason) == (JobState.FAILED, "engine gpu1: CUDA error 700")
    assert not Path(failed["folder"]).exists()
    answer = client.post(
        interrupted["completed"],
        {"success": "false", "interrupted": "true", "reason": "engine stopped (SIGTERM)"},
    )
    row = ProcessorJob.objects.get(pk=interrupted["job"])
    assert row.state == JobState.FAILED and row.interrupted
    Foreman().run_pass()
    retry = ProcessorJob.objects.get(retried_job=row)
    assert (retry.state, retry.num_retries) == (JobState.QUEUED, 0)  # no retry spent
    assert ProcessorJob.objects.get(retried_job_id=failed["job"]).num_retries == 1
    assert client.post("/api/engines/gpu1/assign", {"batch_size": 999}).status_code == 400


def test_a_job_whose_keepalives_stop_is_taken_back_and_handed_out_again(engine_setup, settings):
    one, two = client_of(add_engine("gpu1")), client_of(add_engine("gpu2"))
    assignment = one.post("/api/engines/gpu1/assign").json()["jobs"][0]
    job = ProcessorJob.objects.get(pk=assignment["job"])
    folder = Path(assignment["folder"])
    # A stray folder a restart left (its job no longer runs on that engine), and one
    # of a job that runs: only the stray goes.
    stray = folder.with_name("ASSIGNED_999999_gpu3")
    stray.mkdir()

    report = Foreman().run_pass()
    assert report["engine folders removed"] == 1 and not stray.exists() and folder.exists()
    assert ProcessorJob.objects.get(pk=job.pk).state == JobState.RUNNING  # keepalive is fresh

    lease = settings.REFINERY_HEARTBEAT_LEASE_S
    ProcessorJob.objects.filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - timezone.timedelta(seconds=lease + 1)
    )
    report = Foreman().run_pass()
    assert report["processor engine lost"] == 1
    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert job.failure_reason.startswith("engine lost: its keepalives stopped (engine gpu1)")
    assert not folder.exists()
    retry = ProcessorJob.objects.get(retried_job=job)
    assert retry.state == JobState.QUEUED and retry.num_retries == 1

    # The lost engine comes back: its keepalive says the job is not its any more.
    answer = one.post(assignment["keepalive"])
    assert answer.status_code == 409 and answer.json()["state"] == JobState.FAILED
    # The batch goes to whichever engine asks first, here gpu2, with the retry.
    taken = [a["job"] for a in two.post("/api/engines/gpu2/assign", {"batch_size": 16}).json()[
        "jobs"]]  # fmt: skip
    assert retry.pk in taken and job.pk not in taken
    listed = {e["name"]: e for e in client_of(None).get("/api/engines/").json()}
    assert sorted(listed["gpu2"]["running"]) == sorted(taken)
    assert listed["gpu1"]["jobs"] == {"failed": 1} and listed["gpu1"]["last_contact_at"]
    assert Batch.objects.filter(pk=retry.batches.get().pk).exists()


def statements(captured: CaptureQueriesContext) -> list[str]:
    """The SQL a request ran, without transaction control (which differs between
    databases) and without the engine's last contact (written at most once a second)."""
    control = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")
    return [
        q["sql"]
        for q in captured.captured_queries
        if not q["sql"].startswith(control) and not q["sql"].startswith('UPDATE "api_engine"')
    ]


def test_the_hot_endpoints_read_no_row_per_file_and_run_few_statements(
    tmp_path, refinery_dirs, settings, monkeypatch
):
    """Assign, keepalive and completed are called over and over by every engine:
    the token is resolved in one statement, a batch's files in one whatever their
    number, a keepalive is one UPDATE and a failure's completion one claim and the
    job's transition. bench/engine_api.py measures what this saves. (The token is
    read for every request here; how it is remembered is the next test's.)"""
    monkeypatch.setattr(auth, "TOKEN_REMEMBERED_S", 0)
    settings.REFINERY_ENGINE_ASSIGNED_DIR = tmp_path / "engines"
    queued_basecalling_jobs(tmp_path / "minknow", files=4, reads=2, batch_files=3)
    client = client_of(add_engine("gpu1"))
    sizes, counts = [], []
    for _ in range(2):  # a batch of 3 files and one of 1
        with CaptureQueriesContext(connection) as captured:
            assignment = client.post("/api/engines/gpu1/assign").json()["jobs"][0]
        sizes.append(len(assignment["files"]))
        # The first claim also moves the run (the job's transition, as any worker's).
        sql = [s for s in statements(captured) if "sequencingrun" not in s and "runstate" not in s]
        counts.append(len(sql))
        assert sum("authtoken_token" in s for s in sql) == 1, sql
        assert sum("common_originalfile" in s for s in sql) == 1, sql
    assert sorted(sizes) == [1, 3]
    assert counts[0] == counts[1], "a statement per file is back in assign"
    first = assignment

    with CaptureQueriesContext(connection) as captured:
        assert client.post(first["keepalive"]).status_code == 200
    sql = statements(captured)
    assert len(sql) == 2 and sql[1].startswith('UPDATE "common_processorjob"'), sql

    with CaptureQueriesContext(connection) as captured:
        answer = client.post(first["completed"], {"success": "false", "reason": "no GPU"})
    assert answer.status_code == 200 and answer.json()["state"] == JobState.FAILED
    sql = statements(captured)
    # The token; the completion's claim, which returns the job; its transition.
    assert len(sql) == 3 and all(s.startswith('UPDATE "common_processorjob"') for s in sql[1:]), sql


def test_a_token_is_read_once_a_second_and_a_change_to_it_is_seen_at_once(
    engine_setup, monkeypatch
):
    """Each server process remembers an engine's token for TOKEN_REMEMBERED_S:
    the three requests of a round trip read it once. A removed engine, a new
    token or a deactivated user is refused at once by the process that changed it
    (and within that time by the others)."""
    monkeypatch.setattr(auth, "TOKEN_REMEMBERED_S", 60)
    token = add_engine("gpu1")
    client = client_of(token)

    def token_reads(request) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert request().status_code in (200, 204)
        return sum("authtoken_token" in s for s in statements(captured))

    assignment = client.post("/api/engines/gpu1/assign").json()["jobs"][0]
    assert token_reads(lambda: client.post(assignment["keepalive"])) == 0
    assert token_reads(lambda: client.post("/api/engines/gpu1/assign")) == 0
    monkeypatch.setattr(auth, "TOKEN_REMEMBERED_S", 0.05)
    auth.forget_engine_tokens()
    assert token_reads(lambda: client.post(assignment["keepalive"])) == 1
    time.sleep(0.1)  # the second has passed: read again
    assert token_reads(lambda: client.post(assignment["keepalive"])) == 1

    monkeypatch.setattr(auth, "TOKEN_REMEMBERED_S", 60)
    assert client.post(assignment["keepalive"]).status_code == 200
    out = io.StringIO()  # a new token: the old one stops working at once
    call_command("engines", "add", "gpu1", "--new-token", stdout=out, stderr=io.StringIO())
    new_token = out.getvalue().strip()
    assert client.post(assignment["keepalive"]).status_code == 401
    new_client = client_of(new_token)
    assert new_client.post(assignment["keepalive"]).status_code == 200
    user = Engine.objects.get(name="gpu1").user
    user.is_active = False
    user.save()
    assert new_client.post(assignment["keepalive"]).status_code == 401
    user.is_active = True
    user.save()
    assert new_client.post(assignment["keepalive"]).status_code == 200
    call_command("engines", "remove", "gpu1", stdout=io.StringIO(), stderr=io.StringIO())
    assert new_client.post(assignment["keepalive"]).status_code == 401
    # Only engines' tokens are remembered: wrong ones cannot grow what is kept.
    for forged in ("0" * 40, "f" * 40, token, new_token):
        assert client_of(forged).post("/api/engines/gpu1/assign").status_code == 401
        assert forged not in auth._remembered


def test_engines_command_adds_lists_and_removes_engines(engine_setup):
    token = add_engine("gpu1")
    assert len(token) == 40
    out = io.StringIO()
    call_command("engines", "list", stdout=out)
    assert "gpu1" in out.getvalue() and "never" in out.getvalue()
    with pytest.raises(Exception, match="exists already"):
        call_command("engines", "add", "gpu1", stdout=io.StringIO(), stderr=io.StringIO())
    with pytest.raises(Exception, match="not an engine name"):
        call_command("engines", "add", "../x", stdout=io.StringIO(), stderr=io.StringIO())
    out = io.StringIO()
    call_command("engines", "add", "gpu1", "--new-token", stdout=out, stderr=io.StringIO())
    assert client_of(token).post("/api/engines/gpu1/assign").status_code == 401
    assert client_of(out.getvalue().strip()).post("/api/engines/gpu1/assign").status_code == 200
    call_command("engines", "remove", "gpu1", stdout=io.StringIO())
    assert not Engine.objects.exists()
    assert client_of(out.getvalue().strip()).post("/api/engines/gpu1/assign").status_code == 401


def test_with_s3_storage_an_engine_fetches_presigned_urls_and_its_outputs_land_in_s3(
    tmp_path, s3_storage, settings, monkeypatch
):
    """S3 (moto's server on loopback): no ASSIGNED folder; each pod5 file has a
    presigned URL the engine fetches (and checks) as basecall_engine does."""
    from processors.basecalling.remote import download

    for name in ("OOM_ONCE", "FILTER_EVERY", "LOSE_EVERY", "CALLS"):
        monkeypatch.delenv(f"DORADO_STANDIN_{name}", raising=False)
    settings.REFINERY_DORADO = str(install_dorado_standin(tmp_path / "bin"))
    settings.REFINERY_ENGINE_ASSIGNED_DIR = tmp_path / "engines"
    queued_basecalling_jobs(tmp_path / "minknow", files=2, reads=3, batch_files=2)
    client = client_of(add_engine("gpu1"))
    assignment = client.post("/api/engines/gpu1/assign").json()["jobs"][0]
    assert assignment["folder"] is None
    assert all(f["url"].startswith("http://") for f in assignment["files"])
    assert not (tmp_path / "engines").exists()

    pod5 = tmp_path / "engine" / "pod5"
    pod5.mkdir(parents=True)
    for item in assignment["files"]:
        download(item["url"], pod5 / item["name"], item["sha256"])
    with pytest.raises(Exception, match="does not match its SHA-256"):
        download(assignment["files"][0]["url"], tmp_path / "x.pod5", "0" * 64)
    outputs = basecalled_outputs({**assignment, "folder": str(pod5)}, tmp_path / "engine")
    answer = complete(client, assignment, outputs)
    assert answer.status_code == 200, answer.content
    results = ComputedFile.objects.filter(processor_job_id=assignment["job"])
    assert sorted(r.filename for r in results) == sorted(assignment["outputs"])
    assert all(permanent_storage().exists(r.key) for r in results)
    assert permanent_storage().location(results[0].key).startswith(f"s3://{s3_storage}/")
