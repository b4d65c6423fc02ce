"""The Nomad stand-in, driven by the real python-nomad client, against the
behaviour reference/nomad-api.md describes."""

from __future__ import annotations

import base64
import copy
import os
import sys

import nomad
import pytest
import requests
from nomad.api.exceptions import (
    BadRequestNomadException,
    BaseNomadException,
    URLNotAuthorizedNomadException,
    URLNotFoundNomadException,
)

from demo.nomad_standin import NomadStandin, fake_node

PARENT = "REFINERY_DOWNLOADER_1024"

# A task that prints what it was given and exits with NOMAD_META_EXIT (default 0).
SCRIPT = (
    "import os, sys; "
    "print('job', os.environ['NOMAD_META_JOB_ID'], 'arg', sys.argv[1], "
    "'extra', repr(os.environ['NOMAD_META_EXTRA']), "
    "'lower', os.environ['NOMAD_META_tier'], os.environ['NOMAD_META_TIER'], "
    "'parent', os.environ['NOMAD_JOB_PARENT_ID'], 'env', os.environ['REFINERY_KIND']); "
    "print('to stderr', file=sys.stderr); "
    "sys.exit(int(os.environ.get('NOMAD_META_EXIT') or 0))"
)


def python_rewriter(argv: list[str]) -> list[str]:
    """Map the image's ``python`` onto this interpreter."""
    return [sys.executable if a == "python" else a for a in argv]


def parameterized_job(job_id: str = PARENT, **task_overrides) -> dict:
    task = {
        "Name": "run",
        "Driver": "docker",
        "Config": {
            "image": "refinery/downloader:latest",
            "command": "python",
            "args": ["-c", SCRIPT, "${NOMAD_META_JOB_ID}"],
        },
        "Env": {"REFINERY_KIND": "downloader"},
        "Resources": {"CPU": 500, "MemoryMB": 1024},
    }
    task.update(task_overrides)
    return {
        "Job": {
            "ID": job_id,
            "Type": "batch",
            "Datacenters": ["dc1"],
            "Meta": {"tier": "1024"},
            "ParameterizedJob": {
                "Payload": "forbidden",
                "MetaRequired": ["JOB_ID", "JOB_KIND"],
                "MetaOptional": ["EXTRA", "EXIT"],
            },
            "TaskGroups": [
                {
                    "Name": "jobs",
                    "Count": 1,
                    "RestartPolicy": {"Attempts": 0, "Mode": "fail"},
                    "ReschedulePolicy": {"Attempts": 0, "Unlimited": False},
                    "Tasks": [task],
                }
            ],
        }
    }


@pytest.fixture
def standin():
    with NomadStandin(command_rewriter=python_rewriter, time_scale=0.01) as s:
        yield s
        assert s.internal_errors == []


@pytest.fixture
def client(standin):
    return nomad.Nomad(address=standin.address, timeout=5)


@pytest.fixture
def parent(client):
    client.jobs.register_job(parameterized_job())
    return PARENT


def dispatch(client, meta=None, **kwargs):
    meta = {"JOB_ID": "7", "JOB_KIND": "downloader", **(meta or {})}
    return client.job.dispatch_job(PARENT, meta=meta, **kwargs)


def error_of(excinfo) -> tuple[int, str]:
    response = excinfo.value.nomad_resp
    return response.status_code, response.text


# --------------------------------------------------------------------------- registering


def test_register_parameterized_job_has_no_evaluation_and_keeps_its_block(client, standin):
    answer = client.jobs.register_job(parameterized_job())
    assert answer["EvalID"] == ""
    assert answer["EvalCreateIndex"] == 0
    assert answer["JobModifyIndex"] > 0
    assert answer["Warnings"] == ""
    job = client.job.get_job(PARENT)
    assert job["Status"] == "running"
    assert job["ParameterizedJob"] == {
        "Payload": "forbidden",
        "MetaRequired": ["JOB_ID", "JOB_KIND"],
        "MetaOptional": ["EXTRA", "EXIT"],
    }
    assert job["Dispatched"] is False
    group = job["TaskGroups"][0]
    assert group["RestartPolicy"]["Attempts"] == 0
    assert group["ReschedulePolicy"]["Attempts"] == 0
    # registering the same spec again changes nothing; the other endpoint works too
    again = client.job.register_job(PARENT, parameterized_job())
    assert again["JobModifyIndex"] == answer["JobModifyIndex"]
    assert client.job.get_job(PARENT)["Version"] == 0
    assert standin.requests[0]["method"] == "POST"
    assert standin.requests[0]["path"] == "/v1/jobs"
    assert standin.requests[0]["json"]["Job"]["ID"] == PARENT


def test_batch_defaults_apply_when_policies_are_left_out(client):
    spec = parameterized_job()
    group = spec["Job"]["TaskGroups"][0]
    del group["RestartPolicy"], group["ReschedulePolicy"]
    del spec["Job"]["TaskGroups"][0]["Tasks"][0]["Resources"]
    client.jobs.register_job(spec)
    group = client.job.get_job(PARENT)["TaskGroups"][0]
    assert group["RestartPolicy"] == {
        "Attempts": 3,
        "Delay": 15_000_000_000,
        "Interval": 24 * 3600 * 1_000_000_000,
        "Mode": "fail",
        "RenderTemplates": False,
    }
    assert group["ReschedulePolicy"]["Attempts"] == 1
    assert group["ReschedulePolicy"]["Unlimited"] is False
    task = group["Tasks"][0]
    assert (task["Resources"]["CPU"], task["Resources"]["MemoryMB"]) == (100, 300)
    assert task["KillTimeout"] == 5_000_000_000


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda j: j["TaskGroups"][0]["Tasks"][0]["Resources"].update(CPU=0),
            "minimum CPU value is 1; got 0",
        ),
        (
            lambda j: j["TaskGroups"][0]["Tasks"][0]["Resources"].update(MemoryMB=5),
            "minimum MemoryMB value is 10; got 5",
        ),
        (lambda j: j.update(TaskGroups=[]), "Missing job task groups"),
        (lambda j: j["TaskGroups"][0].update(Tasks=[]), "Missing tasks for task group"),
        (lambda j: j["TaskGroups"][0]["Tasks"][0].update(Driver=""), "Missing task driver"),
        (lambda j: j.update(Type="batchy"), 'Invalid job type: "batchy"'),
        (
            lambda j: j["ParameterizedJob"].update(Payload="sometimes"),
            'Unknown payload requirement: "sometimes"',
        ),
        (
            lambda j: j.update(Type="service"),
            'Parameterized job can only be used with "batch" scheduler',
        ),
        (
            lambda j: j["TaskGroups"][0]["RestartPolicy"].update(Mode="again"),
            'Unsupported restart mode: "again"',
        ),
    ],
)
def test_semantic_registration_errors_answer_500_with_a_list(client, mutate, message):
    spec = parameterized_job()
    mutate(spec["Job"])
    with pytest.raises(BaseNomadException) as excinfo:
        client.jobs.register_job(spec)
    status, text = error_of(excinfo)
    assert status == 500
    assert "error occurred:\n\t* " in text or "errors occurred:\n\t* " in text
    assert message in text


def test_registration_errors_are_collected(client):
    spec = parameterized_job()
    spec["Job"]["Type"] = "nope"
    spec["Job"]["TaskGroups"][0]["Tasks"][0]["Resources"] = {"CPU": 0, "MemoryMB": 1}
    with pytest.raises(BaseNomadException) as excinfo:
        client.jobs.register_job(spec)
    status, text = error_of(excinfo)
    assert status == 500
    assert text.startswith("3 errors occurred:")
    assert "minimum CPU value is 1; got 0" in text
    assert "minimum MemoryMB value is 10; got 1" in text


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (
            lambda j: j["TaskGroups"][0]["RestartPolicy"].update(Delay="30s"),
            "of type time.Duration",
        ),
        (lambda j: j["TaskGroups"][0].update(Count="1"), "TaskGroups.Count of type int"),
        (lambda j: j.update(Meta={"RAM": 1024}), "Job.Meta of type string"),
        (lambda j: j["TaskGroups"][0]["Tasks"][0].update(Env={"A": True}), "of type string"),
        (lambda j: j.update(ID="SOMETHING_ELSE"), "Job ID does not match name"),
    ],
)
def test_bodies_that_do_not_decode_answer_400(client, mutate, fragment):
    spec = parameterized_job()
    mutate(spec["Job"])
    with pytest.raises(BadRequestNomadException) as excinfo:
        client.job.register_job(PARENT, spec)
    status, text = error_of(excinfo)
    assert status == 400
    assert fragment in text
    with pytest.raises(URLNotFoundNomadException):
        client.job.get_job(PARENT)


def test_not_json_and_missing_job_answer_400(standin, client):
    r = requests.post(f"{standin.address}/v1/jobs", data=b"{not json", timeout=5)
    assert r.status_code == 400
    assert r.headers["Content-Type"].startswith("text/plain")
    assert "invalid character" in r.text
    r = requests.post(f"{standin.address}/v1/jobs", json={"job": None}, timeout=5)
    assert (r.status_code, r.text) == (400, "Job must be specified")
    r = requests.post(f"{standin.address}/v1/jobs", json={"Job": {"Type": "batch"}}, timeout=5)
    assert (r.status_code, r.text) == (400, "Job ID hasn't been provided")


def test_unknown_fields_are_dropped_and_keys_match_case_insensitively(client):
    spec = parameterized_job()
    group = spec["Job"]["TaskGroups"][0]
    group["restartpolicy"] = group.pop("RestartPolicy")
    group["Restart"] = {"Attempts": 9}  # not a Nomad field: ignored, as by Nomad
    client.jobs.register_job(spec)
    job = client.job.get_job(PARENT)
    assert job["TaskGroups"][0]["RestartPolicy"]["Attempts"] == 0
    assert "Restart" not in job["TaskGroups"][0]


# --------------------------------------------------------------------------- dispatching


def test_dispatched_child_runs_with_meta_and_completes(client, standin, parent):
    answer = dispatch(client, meta={"JOB_ID": "42"})
    child_id = answer["DispatchedJobID"]
    assert child_id.startswith(f"{PARENT}/dispatch-")
    unix, hex8 = child_id.rsplit("/dispatch-", 1)[1].split("-")
    assert unix.isdigit() and len(hex8) == 8
    assert answer["EvalID"]
    assert answer["EvalCreateIndex"] >= answer["JobCreateIndex"] > 0

    standin.wait_for_job(child_id, "dead")
    child = client.job.get_job(child_id)  # the "/" in the ID goes through unencoded
    assert child["ParentID"] == PARENT
    assert child["Dispatched"] is True
    assert child["Meta"] == {"tier": "1024", "JOB_ID": "42", "JOB_KIND": "downloader"}
    assert child["ParameterizedJob"]["MetaRequired"] == ["JOB_ID", "JOB_KIND"]
    assert child["Status"] == "dead"

    [alloc] = client.job.get_allocations(child_id)
    assert alloc["EvalID"] == answer["EvalID"]
    assert alloc["NodeID"] == standin.nodes[0]["ID"]
    assert alloc["ClientStatus"] == "complete"
    assert alloc["DesiredStatus"] == "run"
    state = alloc["TaskStates"]["run"]
    assert state["State"] == "dead"
    assert state["Failed"] is False
    assert state["StartedAt"] != "0001-01-01T00:00:00Z"
    terminated = [e for e in state["Events"] if e["Type"] == "Terminated"]
    assert [(e["ExitCode"], e["Signal"]) for e in terminated] == [(0, 0)]

    out = client.client.stream_logs.stream(alloc["ID"], "run", "stdout", plain=True)
    assert out == f"job 42 arg 42 extra '' lower 1024 1024 parent {PARENT} env downloader\n"
    err = client.client.stream_logs.stream(alloc["ID"], "run", "stderr", plain=True)
    assert err == "to stderr\n"
    tail = requests.get(
        f"{standin.address}/v1/client/fs/logs/{alloc['ID']}",
        params={"task": "run", "type": "stdout", "plain": "true", "offset": 4},
        timeout=5,
    )
    assert tail.text.startswith("42 arg 42")
    framed = client.client.stream_logs.stream(alloc["ID"], "run", "stdout")
    assert '"Data"' in framed


def test_nonzero_exit_fails_the_allocation(client, standin, parent):
    child_id = dispatch(client, meta={"EXIT": "3"})["DispatchedJobID"]
    standin.wait_for_job(child_id, "dead")
    [alloc] = client.job.get_allocations(child_id)
    assert alloc["ClientStatus"] == "failed"
    state = alloc["TaskStates"]["run"]
    assert state["Failed"] is True
    kinds = [e["Type"] for e in state["Events"]]
    assert kinds[-2:] == ["Terminated", "Not Restarting"]
    assert state["Events"][-2]["ExitCode"] == 3
    assert len(client.job.get_allocations(child_id)) == 1  # reschedule attempts 0

    # What the Foreman reads of a task that died: the allocation and its stderr's end.
    detail = client.allocation.get_allocation(alloc["ID"])
    assert detail["Job"]["ID"] == child_id and detail["Job"]["ParentID"] == PARENT
    [terminated] = [e for e in detail["TaskStates"]["run"]["Events"] if e["Type"] == "Terminated"]
    assert (terminated["ExitCode"], terminated["Details"]["exit_code"]) == (3, "3")
    end = client.client.stream_logs.stream(
        alloc["ID"], "run", "stderr", offset=7, origin="end", plain=True
    )
    assert end == "stderr\n"
    whole = client.client.stream_logs.stream(
        alloc["ID"], "run", "stderr", offset=10_000, origin="end", plain=True
    )
    assert whole == "to stderr\n"
    with pytest.raises(URLNotFoundNomadException) as excinfo:
        client.client.stream_logs.stream("no-such-alloc", "run", "stderr", plain=True)
    assert error_of(excinfo) == (404, 'Unknown allocation "no-such-alloc"')


def test_default_policies_restart_and_reschedule_a_failing_task(client, standin):
    spec = parameterized_job()
    group = spec["Job"]["TaskGroups"][0]
    del group["RestartPolicy"], group["ReschedulePolicy"]
    client.jobs.register_job(spec)
    child_id = dispatch(client, meta={"EXIT": "1"})["DispatchedJobID"]
    # 15 s restart delays and a 5 s reschedule delay, scaled by 0.01
    standin.wait_for(lambda: len(standin._job_allocs(("default", child_id))) == 2)
    standin.wait_for_job(child_id, "dead")
    first, second = client.job.get_allocations(child_id)
    kinds = [e["Type"] for e in first["TaskStates"]["run"]["Events"]]
    assert kinds.count("Terminated") == 4  # the first run and 3 restarts
    assert kinds.count("Restarting") == 3
    assert first["TaskStates"]["run"]["Restarts"] == 3
    assert first["NextAllocation"] == second["ID"]
    assert second["RescheduleTracker"]["Events"][0]["PrevAllocID"] == first["ID"]
    assert client.job.get_job(child_id)["Status"] == "dead"


def test_interpolation_env_and_rewriter_see_nomad_variables(tmp_path):
    seen = []

    def rewriter(argv):
        seen.append(argv)
        return python_rewriter(argv)

    with NomadStandin(
        command_rewriter=rewriter, env_overrides={"REFINERY_KIND": "override"}, cwd=tmp_path
    ) as s:
        n = nomad.Nomad(address=s.address)
        spec = parameterized_job(
            Config={
                "command": "python",
                "args": [
                    "-c",
                    "import os; open('out.txt','w').write(os.environ['NOMAD_ALLOC_ID'] + "
                    "' ' + os.environ['REFINERY_KIND'] + ' ' + os.environ['FROM_ENV'])",
                    "${NOMAD_JOB_ID}",
                    "${NOMAD_META_JOB_KIND}",
                    "${unknown.thing}",
                ],
            },
            Env={"FROM_ENV": "kind=${NOMAD_META_JOB_KIND}", "REFINERY_KIND": "spec"},
        )
        n.jobs.register_job(spec)
        child_id = n.job.dispatch_job(PARENT, meta={"JOB_ID": "1", "JOB_KIND": "k"})[
            "DispatchedJobID"
        ]
        s.wait_for_job(child_id)
        [alloc] = n.job.get_allocations(child_id)
        assert alloc["ClientStatus"] == "complete"
        assert seen[0][-3:] == [child_id, "k", "${unknown.thing}"]
        assert (tmp_path / "out.txt").read_text() == f"{alloc['ID']} override kind=k"


def test_idempotency_token_from_the_query_string_replays_the_child(client, standin, parent):
    body = {"Meta": {"JOB_ID": "7", "JOB_KIND": "downloader"}}
    first = client.job.request(
        PARENT, "dispatch", method="post", params={"idempotency_token": "job-7"}, json=body
    ).json()
    replay = client.job.request(
        PARENT, "dispatch", method="post", params={"idempotency_token": "job-7"}, json=body
    ).json()
    assert replay["DispatchedJobID"] == first["DispatchedJobID"]
    assert first["EvalID"] != ""
    assert replay["EvalID"] == ""
    assert client.job.get_job(first["DispatchedJobID"])["DispatchIdempotencyToken"] == "job-7"
    assert standin.requests[-2]["query"] == {"idempotency_token": "job-7"}
    assert standin.requests[-2]["json"] == body

    # python-nomad's own argument goes in the body, where Nomad ignores it
    a = dispatch(client, idempotency_token="job-8")["DispatchedJobID"]
    b = dispatch(client, idempotency_token="job-8")["DispatchedJobID"]
    assert a != b

    # once the child is garbage-collected the token dispatches anew
    standin.wait_for_job(first["DispatchedJobID"], "dead")
    assert standin.gc(first["DispatchedJobID"]) == [first["DispatchedJobID"]]
    again = client.job.request(
        PARENT, "dispatch", method="post", params={"idempotency_token": "job-7"}, json=body
    ).json()
    assert again["DispatchedJobID"] != first["DispatchedJobID"]
    assert again["EvalID"] != ""


def test_id_prefix_template(client, parent):
    child_id = dispatch(client, id_prefix_template="batch17")["DispatchedJobID"]
    assert child_id.startswith(f"{PARENT}/dispatch-batch17-")


@pytest.mark.parametrize(
    ("payload_mode", "payload", "meta", "message"),
    [
        (
            "forbidden",
            b"x",
            {"JOB_ID": "1", "JOB_KIND": "k"},
            "Payload provided but forbidden by parameterized job",
        ),
        (
            "required",
            None,
            {"JOB_ID": "1", "JOB_KIND": "k"},
            "Payload is not provided but required by parameterized job",
        ),
        (
            "required",
            b"x" * 16385,
            {"JOB_ID": "1", "JOB_KIND": "k"},
            "Payload exceeds maximum size; 16385 > 16384",
        ),
        (
            "optional",
            None,
            {"JOB_ID": "1", "JOB_KIND": "k", "ZZZ": "1", "AAA": "2"},
            "Dispatch request included unpermitted metadata keys: [AAA ZZZ]",
        ),
        ("optional", None, {}, "Dispatch did not provide required meta keys: [JOB_ID JOB_KIND]"),
        # the order: payload before meta
        ("forbidden", b"x", {"NOPE": "1"}, "Payload provided but forbidden by parameterized job"),
        ("optional", b"x" * 20000, {"NOPE": "1"}, "Payload exceeds maximum size; 20000 > 16384"),
        (
            "optional",
            None,
            {"NOPE": "1"},
            "Dispatch request included unpermitted metadata keys: [NOPE]",
        ),
    ],
)
def test_dispatch_errors_answer_500_in_nomads_order(client, payload_mode, payload, meta, message):
    spec = parameterized_job()
    spec["Job"]["ParameterizedJob"]["Payload"] = payload_mode
    client.jobs.register_job(spec)
    encoded = base64.b64encode(payload).decode() if payload is not None else None
    with pytest.raises(BaseNomadException) as excinfo:
        client.job.dispatch_job(PARENT, payload=encoded, meta=meta)
    assert type(excinfo.value) is BaseNomadException
    assert error_of(excinfo) == (500, message)
    assert client.jobs.get_jobs(prefix=f"{PARENT}/") == []


def test_dispatch_payload_reaches_the_job_and_the_task(client, standin):
    spec = parameterized_job(
        Config={
            "command": "python",
            "args": [
                "-c",
                "import os,sys; sys.stdout.write(open(os.environ['NOMAD_TASK_DIR'] "
                "+ '/input.json').read())",
            ],
        },
        DispatchPayload={"File": "input.json"},
    )
    spec["Job"]["ParameterizedJob"]["Payload"] = "required"
    client.jobs.register_job(spec)
    encoded = base64.b64encode(b'{"batch": 1}').decode()
    child_id = dispatch(client, payload=encoded)["DispatchedJobID"]
    standin.wait_for_job(child_id)
    assert client.job.get_job(child_id)["Payload"] == encoded
    assert standin.logs(child_id) == '{"batch": 1}'


def test_dispatch_to_unknown_or_plain_job(client):
    with pytest.raises(BaseNomadException) as excinfo:
        client.job.dispatch_job("NOPE", meta={})
    assert error_of(excinfo) == (500, "parameterized job not found")
    plain = parameterized_job("PLAIN")
    del plain["Job"]["ParameterizedJob"]
    plain["Job"]["TaskGroups"][0]["Count"] = 0
    client.jobs.register_job(plain)
    with pytest.raises(BaseNomadException) as excinfo:
        client.job.dispatch_job("PLAIN", meta={})
    assert error_of(excinfo) == (500, 'Specified job "PLAIN" is not a parameterized job')


def test_dispatch_body_that_does_not_decode_answers_400(standin, parent):
    url = f"{standin.address}/v1/job/{PARENT}/dispatch"
    r = requests.post(url, json={"Payload": "not base64!", "Meta": {}}, timeout=5)
    assert r.status_code == 400
    assert r.text.startswith("illegal base64 data at input byte")
    r = requests.post(url, json={"Meta": {"JOB_ID": 7, "JOB_KIND": "k"}}, timeout=5)
    assert r.status_code == 400
    assert "of type string" in r.text
    r = requests.post(url, json={"JobID": "OTHER", "Meta": {}}, timeout=5)
    assert (r.status_code, r.text) == (400, "Job ID does not match")


# --------------------------------------------------------------------------- reading and stopping


def test_unknown_jobs(client, standin):
    with pytest.raises(URLNotFoundNomadException) as excinfo:
        client.job.get_job("NOPE")
    assert error_of(excinfo) == (404, "job not found")
    with pytest.raises(URLNotFoundNomadException) as excinfo:
        client.job.get_summary("NOPE/dispatch-1-abcdef12")
    assert error_of(excinfo) == (404, "job not found")
    assert client.job.get_allocations("NOPE/dispatch-1-abcdef12") == []
    answer = client.job.deregister_job("NOPE", purge=True)
    assert answer["EvalID"] == ""
    assert standin.requests[-1]["query"] == {"purge": "True"}
    with pytest.raises(URLNotFoundNomadException) as excinfo:
        client.evaluation.get_evaluation("0" * 36)
    assert error_of(excinfo) == (404, "eval not found")


def test_deregister_stops_a_running_child(client, standin, parent):
    spec = parameterized_job(
        Config={"command": "python", "args": ["-c", "import time; time.sleep(60)"]}
    )
    client.jobs.register_job(spec)
    child_id = dispatch(client)["DispatchedJobID"]
    standin.wait_for(lambda: any(a.client_status == "running" for a in standin._allocs.values()))
    assert client.job.get_job(child_id)["Status"] == "running"
    answer = client.job.deregister_job(child_id, purge=True)
    assert answer["EvalID"] != ""
    with pytest.raises(URLNotFoundNomadException):
        client.job.get_job(child_id)
    standin.wait_for(
        lambda: all(t.state == "dead" for a in standin._allocs.values() for t in a.tasks.values())
    )
    [alloc] = standin.allocations(child_id)
    assert alloc["DesiredStatus"] == "stop"
    assert alloc["ClientStatus"] == "complete"
    kinds = [e["Type"] for e in alloc["TaskStates"]["run"]["Events"]]
    assert "Killing" in kinds and kinds[-1] == "Killed"


def test_gc_makes_a_finished_child_404(client, standin, parent):
    child_id = dispatch(client)["DispatchedJobID"]
    standin.wait_for_job(child_id, "dead")
    assert client.job.get_summary(PARENT)["Children"]["Dead"] == 1
    assert standin.gc() == [child_id]
    with pytest.raises(URLNotFoundNomadException):
        client.job.get_job(child_id)
    assert client.job.get_allocations(child_id) == []
    assert client.job.get_summary(PARENT)["Children"] == {"Pending": 0, "Running": 0, "Dead": 0}
    assert client.job.get_job(PARENT)["Status"] == "running"  # parents are never collected


def test_jobs_list_by_prefix(client, standin, parent):
    child_id = dispatch(client)["DispatchedJobID"]
    stubs = client.jobs.get_jobs(prefix=PARENT)
    assert [s["ID"] for s in stubs] == [PARENT, child_id]
    parent_stub, child_stub = stubs
    assert parent_stub["ParameterizedJob"] is True
    assert child_stub["ParameterizedJob"] is False
    assert child_stub["ParentID"] == PARENT
    assert child_stub["Periodic"] is False
    assert child_stub["Type"] == "batch"
    assert "Summary" in child_stub["JobSummary"]
    assert client.jobs.get_jobs(prefix="OTHER") == []


# --------------------------------------------------------------------------- fault injection


@pytest.fixture
def idle():
    """A stand-in that runs no processes: allocations run until finished by hand."""
    with NomadStandin(run_children=False) as s:
        yield s, nomad.Nomad(address=s.address)
        assert s.internal_errors == []


def test_summary_children_counts(idle):
    standin, client = idle
    client.jobs.register_job(parameterized_job())
    ids = [dispatch(client)["DispatchedJobID"] for _ in range(3)]
    standin.hold_pending(PARENT)
    held = dispatch(client)["DispatchedJobID"]
    assert client.job.get_summary(PARENT)["Children"] == {"Pending": 1, "Running": 3, "Dead": 0}
    assert client.job.get_summary(ids[0])["Summary"]["jobs"]["Running"] == 1
    assert client.job.get_summary(held)["Summary"]["jobs"]["Queued"] == 1
    standin.finish_allocation(ids[0], 0)
    standin.finish_allocation(ids[1], 2)
    assert client.job.get_summary(PARENT)["Children"] == {"Pending": 1, "Running": 1, "Dead": 2}
    assert client.job.get_summary(ids[1])["Summary"]["jobs"]["Failed"] == 1
    assert client.job.get_allocations(ids[1])[0]["ClientStatus"] == "failed"


def test_lose_allocation(idle):
    standin, client = idle
    client.jobs.register_job(parameterized_job())
    child_id = dispatch(client)["DispatchedJobID"]
    [alloc] = client.job.get_allocations(child_id)
    assert alloc["ClientStatus"] == "running"
    standin.lose_allocation(child_id, replace=False)
    [alloc] = client.job.get_allocations(child_id)
    assert alloc["ClientStatus"] == "lost"
    assert alloc["DesiredStatus"] == "stop"
    assert alloc["TaskStates"]["run"]["State"] == "running"  # the last report from the node
    assert client.job.get_job(child_id)["Status"] == "dead"
    assert client.job.get_summary(child_id)["Summary"]["jobs"]["Lost"] == 1

    other = dispatch(client)["DispatchedJobID"]
    standin.lose_allocation(other)  # replaced, by default, as Nomad does
    lost, replacement = client.job.get_allocations(other)
    assert lost["ClientStatus"] == "lost"
    assert replacement["ClientStatus"] == "running"
    assert client.job.get_job(other)["Status"] == "running"


def test_lose_allocation_kills_the_process(standin, client):
    spec = parameterized_job(
        Config={"command": "python", "args": ["-c", "import time; time.sleep(60)"]}
    )
    client.jobs.register_job(spec)
    child_id = dispatch(client)["DispatchedJobID"]
    standin.wait_for(
        lambda: any(t.proc is not None for a in standin._allocs.values() for t in a.tasks.values())
    )
    [proc] = [t.proc for a in standin._allocs.values() for t in a.tasks.values()]
    standin.lose_allocation(child_id, replace=False)
    assert proc.wait(timeout=5) == -9
    assert client.job.get_allocations(child_id)[0]["ClientStatus"] == "lost"


def test_hold_pending_gives_failed_tg_allocs_and_a_blocked_eval(idle):
    standin, client = idle
    client.jobs.register_job(parameterized_job())
    standin.hold_pending(PARENT)
    answer = dispatch(client)
    child_id = answer["DispatchedJobID"]
    evaluation = client.evaluation.get_evaluation(answer["EvalID"])
    assert evaluation["Status"] == "complete"
    metric = evaluation["FailedTGAllocs"]["jobs"]
    assert metric["NodesEvaluated"] == 1
    assert metric["NodesExhausted"] == 1
    assert metric["DimensionExhausted"] == {"memory": 1}
    blocked = client.evaluation.get_evaluation(evaluation["BlockedEval"])
    assert blocked["Status"] == "blocked"
    assert blocked["PreviousEval"] == answer["EvalID"]
    assert client.job.get_job(child_id)["Status"] == "pending"
    assert client.job.get_allocations(child_id) == []

    standin.release_pending()
    assert client.evaluation.get_evaluation(evaluation["BlockedEval"])["Status"] == "complete"
    assert client.job.get_job(child_id)["Status"] == "running"


def test_capacity_blocks_and_frees(tmp_path):
    node = fake_node(cpu_mhz=4000, memory_mb=2048)
    with NomadStandin(nodes=[node], run_children=False) as standin:
        client = nomad.Nomad(address=standin.address)
        client.jobs.register_job(parameterized_job())  # 1024 MB each
        a, b, c = (dispatch(client)["DispatchedJobID"] for _ in range(3))
        assert [client.job.get_job(x)["Status"] for x in (a, b, c)] == [
            "running",
            "running",
            "pending",
        ]
        evaluation = client.evaluation.get_evaluation(client.job.get_evaluations(c)[0]["ID"])
        assert evaluation["FailedTGAllocs"]["jobs"]["DimensionExhausted"] == {"memory": 1}
        standin.finish_allocation(a)
        assert client.job.get_job(c)["Status"] == "running"

        standin.finish_allocation(b)
        standin.finish_allocation(c)
        gpu = parameterized_job("GPU")
        gpu["Job"]["TaskGroups"][0]["Tasks"][0]["Resources"]["Devices"] = [
            {"Name": "nvidia/gpu", "Count": 1}
        ]
        client.jobs.register_job(gpu)
        child = client.job.dispatch_job("GPU", meta={"JOB_ID": "1", "JOB_KIND": "k"})
        failed = client.evaluation.get_evaluation(child["EvalID"])["FailedTGAllocs"]["jobs"]
        assert failed["DimensionExhausted"] == {"devices: no devices match request": 1}


def test_unknown_driver_registers_but_never_places(client, standin):
    client.jobs.register_job(parameterized_job(Driver="podman"))
    answer = dispatch(client)
    metric = client.evaluation.get_evaluation(answer["EvalID"])["FailedTGAllocs"]["jobs"]
    assert metric["ConstraintFiltered"] == {"missing drivers": 1}
    assert client.job.get_job(answer["DispatchedJobID"])["Status"] == "pending"


def test_strict_token(standin):
    standin.strict_token = "s3cret"
    with pytest.raises(URLNotAuthorizedNomadException) as excinfo:
        nomad.Nomad(address=standin.address).jobs.get_jobs()
    assert error_of(excinfo) == (403, "Permission denied")
    with pytest.raises(URLNotAuthorizedNomadException) as excinfo:
        nomad.Nomad(address=standin.address, token="wrong").jobs.get_jobs()
    assert error_of(excinfo) == (403, "ACL token not found")
    assert nomad.Nomad(address=standin.address, token="s3cret").jobs.get_jobs() == []
    assert standin.requests[-1]["headers"]["X-Nomad-Token"] == "s3cret"


def test_fail_next(client, standin):
    standin.fail_next(2, status=500, body="rpc error: No cluster leader", path_contains="/jobs")
    for _ in range(2):
        with pytest.raises(BaseNomadException) as excinfo:
            client.jobs.get_jobs()
        assert error_of(excinfo) == (500, "rpc error: No cluster leader")
    assert client.jobs.get_jobs() == []
    assert [r["status"] for r in standin.requests] == [500, 500, 200]


def test_unreachable_and_back_on_the_same_port(client, standin, parent):
    port = standin.port
    standin.set_unreachable(True)
    with pytest.raises(BaseNomadException) as excinfo:
        client.job.get_job(PARENT)
    assert isinstance(excinfo.value.nomad_resp, requests.exceptions.ConnectionError)
    standin.set_unreachable("hang")
    with pytest.raises(BaseNomadException) as excinfo:
        nomad.Nomad(address=standin.address, timeout=0.3).job.get_job(PARENT)
    assert isinstance(excinfo.value.nomad_resp, requests.exceptions.RequestException)
    standin.set_unreachable(False)
    assert standin.port == port
    assert client.job.get_job(PARENT)["ID"] == PARENT


def test_nodes_with_resources():
    nodes = [
        fake_node("cpu-1", cpu_mhz=8000, memory_mb=16384),
        fake_node("gpu-1", gpus=2, status="down"),
    ]
    with NomadStandin(nodes=nodes) as standin:
        client = nomad.Nomad(address=standin.address)
        plain = client.nodes.get_nodes()
        assert "NodeResources" not in plain[0]
        listed = client.nodes.get_nodes(resources=True)
        assert [
            (n["Name"], n["Status"], n["SchedulingEligibility"], n["Drain"]) for n in listed
        ] == [("cpu-1", "ready", "eligible", False), ("gpu-1", "down", "eligible", False)]
        assert listed[0]["NodeResources"]["Cpu"]["CpuShares"] == 8000
        assert listed[0]["NodeResources"]["Memory"]["MemoryMB"] == 16384
        gpu = listed[1]["NodeResources"]["Devices"][0]
        assert (gpu["Vendor"], gpu["Type"], len(gpu["Instances"])) == ("nvidia", "gpu", 2)
        assert standin.requests[-1]["query"] == {"resources": "True"}


def test_namespaces_are_separate(standin):
    default = nomad.Nomad(address=standin.address)
    other = nomad.Nomad(address=standin.address, namespace="lab")
    other.jobs.register_job(copy.deepcopy(parameterized_job()))
    assert other.job.get_job(PARENT)["Namespace"] == "lab"
    with pytest.raises(URLNotFoundNomadException):
        default.job.get_job(PARENT)


def test_child_processes_do_not_outlive_the_standin():
    with NomadStandin(command_rewriter=python_rewriter) as standin:
        client = nomad.Nomad(address=standin.address)
        client.jobs.register_job(
            parameterized_job(
                Config={"command": "python", "args": ["-c", "import time; time.sleep(60)"]}
            )
        )
        dispatch(client)
        standin.wait_for(
            lambda: any(
                t.proc is not None for a in standin._allocs.values() for t in a.tasks.values()
            )
        )
        [proc] = [t.proc for a in standin._allocs.values() for t in a.tasks.values()]
        workdir = standin.workdir
    assert proc.poll() is not None
    assert not os.path.exists(workdir)


def concurrent_dispatches(address: str, token: str, n: int = 2) -> list[str]:
    """`n` dispatches with one idempotency token, sent at once from `n` threads."""
    from concurrent.futures import ThreadPoolExecutor

    def one(_):
        client = nomad.Nomad(address=address, timeout=10)
        meta = {"JOB_ID": "7", "JOB_KIND": "downloader"}
        answer = client.job.request(
            PARENT, "dispatch", method="post", params={"idempotency_token": token},
            json={"Meta": meta},
        )  # fmt: skip
        return answer.json()["DispatchedJobID"]

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


@pytest.mark.parametrize("racy", [False, True])
def test_concurrent_dispatches_with_one_token_make_one_child_unless_racy(racy):
    """hashicorp/nomad#26690: a Nomad that checks the token outside its state lock
    may create a child per concurrent dispatch; the stand-in does that on request."""
    with NomadStandin(run_children=False, racy_idempotency=racy) as standin:
        client = nomad.Nomad(address=standin.address)
        client.jobs.register_job(parameterized_job())
        children = concurrent_dispatches(standin.address, "job-7")
        assert len(set(children)) == (2 if racy else 1)
        assert sorted(standin.children(PARENT)) == sorted(set(children))
        # Once a child exists, the token replays it, racy or not.
        [again] = concurrent_dispatches(standin.address, "job-7", n=1)
        assert again in children
        assert standin.internal_errors == []
