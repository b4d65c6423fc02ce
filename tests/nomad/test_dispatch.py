"""The Nomad dispatcher against the stand-in: sending every kind of job, what
became of it (status), stopping, capacity, placement failures and Nomad's errors."""

from __future__ import annotations

import logging

import nomad
import pytest

from common.models import DownloaderJob, JobState, ProcessorJob, SurveyJob
from runner.dispatch import DispatchError, DispatchStatus, send_job, send_job_now
from runner.nomad.dispatcher import idempotency_token, status_from

pytestmark = pytest.mark.django_db


def new_jobs() -> list:
    return [
        SurveyJob.objects.create(source="local_files", parameters={"path": "/data"}),
        DownloaderJob.objects.create(downloader_task="files", ram_mb=3000),
        ProcessorJob.objects.create(pipeline="file_summary", ram_mb=9000),
        ProcessorJob.objects.create(pipeline="transcriptome_index_long", ram_mb=65536),
    ]


def child_of(standin, job) -> dict:
    return standin.job(job.dispatch_id)


def test_every_kind_is_dispatched_to_its_tier_with_meta(registered):
    jobs = new_jobs()
    for job in jobs:
        assert send_job_now(job)
        job.refresh_from_db()
        assert job.state == JobState.QUEUED
    parents = [child_of(registered, job)["ParentID"] for job in jobs]
    assert parents == [
        "REFINERY_SURVEY_1024",
        "REFINERY_DOWNLOADER_4096",
        "REFINERY_PROCESSOR_12288",
        "REFINERY_PROCESSOR_65536",
    ]
    for job in jobs:
        child = child_of(registered, job)
        assert job.dispatch_id == child["ID"]
        assert job.dispatch_id.startswith(f"{child['ParentID']}/dispatch-{job.kind}-{job.pk}-")
        assert child["Dispatched"] is True
        assert child["Meta"]["JOB_ID"] == str(job.pk)
        assert child["Meta"]["JOB_KIND"] == job.kind
        assert child["DispatchIdempotencyToken"] == idempotency_token(job)
        [alloc] = registered.allocations(job.dispatch_id)
        assert alloc["ClientStatus"] == "running"
    dispatches = [r for r in registered.requests if r["path"].endswith("/dispatch")]
    assert len(dispatches) == 4
    for request, job in zip(dispatches, jobs, strict=True):
        assert request["query"] == {"idempotency_token": idempotency_token(job)}
        assert request["json"]["Meta"] == {"JOB_ID": str(job.pk), "JOB_KIND": job.kind}
        assert "Payload" not in request["json"]


def test_a_resent_attempt_gets_the_same_child(registered, dispatcher):
    job = DownloaderJob.objects.create(downloader_task="files")
    first = dispatcher.send(job)
    again = dispatcher.send(job)
    assert first == again
    assert registered.children("REFINERY_DOWNLOADER_1024") == [first]
    retry = job.create_retry() if job.mark_failed("test") else None
    assert dispatcher.send(retry) != first


def test_send_job_after_commit_uses_nomad(registered, django_capture_on_commit_callbacks):
    job = SurveyJob.objects.create(source="local_files", parameters={"path": "/data"})
    with django_capture_on_commit_callbacks(execute=True):
        send_job(job)
    job.refresh_from_db()
    assert job.state == JobState.QUEUED
    assert registered.children("REFINERY_SURVEY_1024") == [job.dispatch_id]


def test_status_follows_the_child_and_its_allocations(registered, dispatcher):
    jobs = [ProcessorJob.objects.create(pipeline="smoke_test") for _ in range(5)]
    for job in jobs:
        send_job_now(job)
        job.refresh_from_db()
    ok, bad, lost, gone, kept = jobs
    assert {dispatcher.status(job) for job in jobs} == {DispatchStatus.RUNNING}
    registered.finish_allocation(ok.dispatch_id, 0)
    registered.finish_allocation(bad.dispatch_id, 1)
    registered.lose_allocation(lost.dispatch_id, replace=False)
    registered.finish_allocation(gone.dispatch_id, 0)
    registered.gc(gone.dispatch_id)
    assert dispatcher.status(ok) == DispatchStatus.COMPLETE
    assert dispatcher.status(bad) == DispatchStatus.FAILED
    assert dispatcher.status(lost) == DispatchStatus.LOST
    assert dispatcher.status(gone) == DispatchStatus.GONE
    # A lost allocation that Nomad replaced: the replacement is the job's work now.
    registered.lose_allocation(kept.dispatch_id)
    assert dispatcher.status(kept) == DispatchStatus.RUNNING
    # Not a Nomad dispatch at all (sent by the local dispatcher, or never sent).
    assert dispatcher.status(ProcessorJob(dispatch_id="local")) == DispatchStatus.GONE
    assert dispatcher.status(ProcessorJob(dispatch_id="")) == DispatchStatus.GONE


def test_status_from_allocation_stubs():
    def alloc(status, index):
        return {"ClientStatus": status, "CreateIndex": index}

    assert status_from("pending", []) == DispatchStatus.PENDING
    assert status_from("running", []) == DispatchStatus.PENDING
    assert status_from("running", [alloc("pending", 3)]) == DispatchStatus.PENDING
    assert status_from("dead", []) == DispatchStatus.GONE
    assert status_from("dead", [alloc("lost", 3), alloc("failed", 5)]) == DispatchStatus.FAILED
    assert status_from("pending", [alloc("lost", 3)]) == DispatchStatus.PENDING
    assert status_from("dead", [alloc("unknown", 3)]) == DispatchStatus.LOST


def test_stop_purges_the_child(registered, dispatcher):
    job = ProcessorJob.objects.create(pipeline="smoke_test")
    send_job_now(job)
    job.refresh_from_db()
    dispatcher.stop(job)
    assert registered.job(job.dispatch_id) is None
    [alloc] = registered.allocations(job.dispatch_id)
    assert alloc["DesiredStatus"] == "stop"
    assert dispatcher.status(job) == DispatchStatus.GONE
    [delete] = [r for r in registered.requests if r["method"] == "DELETE"]
    assert (delete["path"], delete["query"]) == (f"/v1/job/{job.dispatch_id}", {"purge": "True"})
    dispatcher.stop(job)  # again: Nomad answers 200 for an unknown job
    dispatcher.stop(ProcessorJob(dispatch_id="local"))  # nothing to stop


def test_capacity_counts_pending_and_running_children(registered, dispatcher):
    assert (dispatcher.capacity().queued, dispatcher.capacity().running) == (0, 0)
    jobs = [ProcessorJob.objects.create(pipeline="smoke_test") for _ in range(3)]
    jobs.append(DownloaderJob.objects.create(downloader_task="files", ram_mb=16000))
    for job in jobs:
        send_job_now(job)
    registered.hold_pending("REFINERY_SURVEY_1024")
    send_job_now(SurveyJob.objects.create(source="local_files", parameters={}))
    done = ProcessorJob.objects.get(pk=jobs[0].pk)
    registered.finish_allocation(done.dispatch_id, 0)
    capacity = dispatcher.capacity()
    assert (capacity.queued, capacity.running) == (1, 3)
    summaries = [r for r in registered.requests[-20:] if r["path"].endswith("/summary")]
    assert {r["path"] for r in summaries} >= {"/v1/job/REFINERY_PROCESSOR_1024/summary"}


def test_capacity_without_registered_jobs_is_an_error(idle_standin, dispatcher):
    with pytest.raises(DispatchError, match=r"run `manage\.py nomad register`"):
        dispatcher.capacity()


def test_a_job_nomad_cannot_place_says_why(registered, dispatcher, settings):
    """A job pending past a timeout with FailedTGAllocs: the Foreman can fail it
    with the placement reason."""
    registered.hold_pending("REFINERY_PROCESSOR_4096")
    job = ProcessorJob.objects.create(pipeline="smoke_test", ram_mb=4096)
    other = ProcessorJob.objects.create(pipeline="smoke_test", ram_mb=1024)
    send_job_now(job)
    send_job_now(other)
    job.refresh_from_db()
    other.refresh_from_db()
    assert dispatcher.status(job) == DispatchStatus.PENDING
    reason = dispatcher.placement_failure(job)
    assert reason == (
        f"Nomad cannot place {job.dispatch_id} (it asks for 4096 MB RAM, 2000 MHz CPU): "
        'task group "processor": 1 node evaluated: exhausted "memory" on 1 node'
    )
    assert dispatcher.placement_failure(other) is None
    # Past the timeout, the job is unplaceable: what the Foreman fails it with.
    settings.REFINERY_NOMAD_PLACEMENT_TIMEOUT_S = 3600
    assert dispatcher.unplaceable(job) is None
    settings.REFINERY_NOMAD_PLACEMENT_TIMEOUT_S = 0
    assert dispatcher.unplaceable(job) == f"not placed by Nomad within 0 s: {reason}"
    assert dispatcher.unplaceable(other) is None
    assert job.mark_failed(dispatcher.unplaceable(job))
    dispatcher.stop(job)
    job.refresh_from_db()
    assert job.failure_reason.startswith(
        "not placed by Nomad within 0 s: Nomad cannot place REFINERY_PROCESSOR_4096/dispatch-"
    )
    assert dispatcher.unplaceable(job) is None  # failed now
    assert registered.job(job.dispatch_id) is None
    registered.release_pending()
    assert registered.children("REFINERY_PROCESSOR_4096") == []


def test_a_gpu_job_on_a_cluster_without_gpus(registered, settings, dispatcher):
    from runner.nomad.register import register_all
    from runner.nomad.specs import all_specs

    settings.REFINERY_NOMAD_GPU_PIPELINES = ["transcriptome_index_short"]
    register_all(all_specs())
    job = ProcessorJob.objects.create(pipeline="transcriptome_index_short", ram_mb=8192)
    send_job_now(job)
    job.refresh_from_db()
    assert job.dispatch_id.startswith("REFINERY_PROCESSOR_GPU_8192/")
    assert dispatcher.status(job) == DispatchStatus.PENDING
    assert dispatcher.placement_failure(job).endswith(
        '(it asks for 8192 MB RAM, 2000 MHz CPU, 1 nvidia/gpu): task group "processor": '
        '1 node evaluated: exhausted "devices: no devices match request" on 1 node'
    )


# --- Nomad's errors --------------------------------------------------------------------------


def test_an_unregistered_parent_is_a_clear_error(idle_standin, dispatcher):
    job = SurveyJob.objects.create(source="local_files", parameters={})
    with pytest.raises(DispatchError) as excinfo:
        dispatcher.send(job)
    assert str(excinfo.value) == (
        f"Nomad has no job REFINERY_SURVEY_1024 to dispatch {job} to: register the refinery's "
        "jobs with `manage.py nomad register`"
    )
    assert not send_job_now(job)
    job.refresh_from_db()
    assert job.state == JobState.CREATED


def test_errors_say_what_nomad_answered_and_never_the_token(registered, settings, dispatcher):
    token = "s3cret-nomad-token-0123456789"
    settings.REFINERY_NOMAD_TOKEN = token
    job = ProcessorJob.objects.create(pipeline="smoke_test")
    registered.fail_next(1, status=500, body=f"rpc error: No cluster leader (token {token})")
    with pytest.raises(DispatchError) as excinfo:
        dispatcher.send(job)
    message = str(excinfo.value)
    assert message.startswith(
        f"Nomad at {registered.address} refused to dispatch {job} to REFINERY_PROCESSOR_1024: "
        "HTTP 500: rpc error: No cluster leader"
    )
    assert token not in message
    registered.strict_token = "the-right-token-0123456789"
    with pytest.raises(DispatchError) as excinfo:
        dispatcher.send(job)
    assert "HTTP 403: ACL token not found (check NOMAD_TOKEN and its ACL policy)" in str(
        excinfo.value
    )
    assert token not in str(excinfo.value)
    assert registered.requests[-1]["headers"]["X-Nomad-Token"] == token


def test_a_hanging_nomad_times_out(registered, settings, dispatcher):
    settings.REFINERY_NOMAD_TIMEOUT_S = 0.3
    registered.set_unreachable("hang")
    job = ProcessorJob.objects.create(pipeline="smoke_test")
    with pytest.raises(DispatchError, match=r"cannot reach Nomad at .* no answer within 0\.3 s"):
        dispatcher.send(job)
    with pytest.raises(DispatchError, match="cannot reach Nomad"):
        dispatcher.status(ProcessorJob(dispatch_id="REFINERY_X/dispatch-1-abcdef12"))


def test_unreachable_nomad_leaves_jobs_created_until_it_is_back(registered, caplog):
    from foreman.passes import Foreman

    registered.set_unreachable(True)
    jobs = [ProcessorJob.objects.create(pipeline="smoke_test") for _ in range(3)]
    with caplog.at_level(logging.WARNING, logger="runner.dispatch.outbox"):
        assert not send_job_now(jobs[0])
    assert "stays created: nomad could not take it (cannot reach Nomad at" in caplog.text
    assert "Connection refused" in caplog.text
    report = Foreman(outbox_grace_s=0).run_pass()
    assert not report["processor dispatched"]
    assert set(ProcessorJob.objects.values_list("state", flat=True)) == {JobState.CREATED}

    registered.set_unreachable(False)
    report = Foreman(outbox_grace_s=0).run_pass()
    assert report["processor dispatched"] == 3
    for job in jobs:
        job.refresh_from_db()
        assert job.state == JobState.QUEUED
        assert registered.job(job.dispatch_id)["Meta"]["JOB_ID"] == str(job.pk)


# --- recovery through the Foreman ------------------------------------------------------------


def test_a_lost_allocation_is_dispatched_again(registered, settings, dispatcher):
    from foreman.passes import Foreman

    settings.REFINERY_HEARTBEAT_LEASE_S = 0
    job = ProcessorJob.objects.create(pipeline="smoke_test")
    send_job_now(job)
    job.refresh_from_db()
    registered.lose_allocation(job.dispatch_id, replace=False)
    assert dispatcher.status(job) == DispatchStatus.LOST
    report = Foreman(outbox_grace_s=0).run_pass()
    assert report["processor lost"] == 1
    assert report["processor dispatched"] == 1
    job.refresh_from_db()
    assert job.state == JobState.FAILED
    retry = job.retry
    assert retry.state == JobState.QUEUED
    assert retry.dispatch_id != job.dispatch_id
    child = registered.job(retry.dispatch_id)
    assert child["Meta"]["JOB_ID"] == str(retry.pk)
    assert dispatcher.status(retry) == DispatchStatus.RUNNING


def test_a_running_job_whose_allocation_was_lost_is_retried(registered, settings, dispatcher):
    from foreman.passes import WORKER_LOST, Foreman

    settings.REFINERY_HEARTBEAT_LEASE_S = 0
    job = ProcessorJob.objects.create(pipeline="smoke_test")
    send_job_now(job)
    job.refresh_from_db()
    [alloc] = registered.allocations(job.dispatch_id)
    assert job.mark_started(f"nomad:{alloc['ID']}", "test", job.dispatch_id)
    assert dispatcher.status(job) == DispatchStatus.RUNNING
    # Nomad replaces allocations of a lost node even with reschedule attempts 0; the
    # replacement would find the job started and leave it: the job's own work is lost.
    registered.lose_allocation(job.dispatch_id)
    assert [a["ClientStatus"] for a in registered.allocations(job.dispatch_id)] == [
        "lost",
        "running",
    ]
    assert dispatcher.status(job) == DispatchStatus.LOST
    report = Foreman(outbox_grace_s=0).run_pass()
    assert report["processor worker lost"] == 1
    job.refresh_from_db()
    # The reason says how the job's own allocation ended, not the replacement's.
    assert (job.state, job.failure_reason) == (
        JobState.FAILED,
        f"{WORKER_LOST}: the allocation was lost with its node (allocation {alloc['ID'][:8]}, "
        f"task processor on node {alloc['NodeName']})",
    )
    assert job.retry.state == JobState.QUEUED
    assert registered.job(job.dispatch_id) is None  # stopped: the replacement too


def test_a_collected_child_of_a_finished_job_is_not_an_error(registered, dispatcher, caplog):
    from foreman.passes import Foreman

    job = ProcessorJob.objects.create(pipeline="smoke_test")
    send_job_now(job)
    job.refresh_from_db()
    job.mark_started("nomad:alloc", "test", job.dispatch_id)
    job.mark_succeeded()
    registered.finish_allocation(job.dispatch_id, 0)
    assert registered.gc() == [job.dispatch_id]
    assert dispatcher.status(job) == DispatchStatus.GONE
    with caplog.at_level(logging.WARNING):
        report = Foreman(outbox_grace_s=0).run_pass()
    assert not report
    assert "error" not in caplog.text.lower()
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED and not job.retried


def test_the_client_follows_the_settings(registered, settings):
    from runner.nomad.client import nomad_client

    client = nomad_client()
    assert isinstance(client, nomad.Nomad)
    assert nomad_client() is client
    settings.REFINERY_NOMAD_NAMESPACE = "lab"
    assert nomad_client() is not client
    assert nomad_client().get_namespace() == "lab"


def test_the_foreman_fails_a_job_nomad_cannot_place_and_tells_operators(registered, settings):
    from foreman.models import Notification
    from foreman.passes import Foreman

    settings.REFINERY_HEARTBEAT_LEASE_S = 0
    settings.REFINERY_NOMAD_PLACEMENT_TIMEOUT_S = 0
    registered.hold_pending("REFINERY_PROCESSOR_4096")
    job = ProcessorJob.objects.create(pipeline="smoke_test", ram_mb=4096)
    send_job_now(job)
    job.refresh_from_db()
    report = Foreman(outbox_grace_s=0).run_pass()
    assert report["processor unplaceable"] == 1
    job.refresh_from_db()
    assert job.state == JobState.FAILED and job.no_retry
    assert job.failure_reason.startswith("not placed by Nomad within 0 s: Nomad cannot place")
    assert 'exhausted "memory"' in job.failure_reason
    assert not job.retried  # given up: a bigger RAM tier would place even less
    assert registered.job(job.dispatch_id) is None  # its pending child was stopped
    assert Notification.objects.count() == 1
    registered.release_pending()
