"""The stand-in's Nomad Variables, task templates that read them into a task's
environment, and workload identities, driven by the real python-nomad client."""

from __future__ import annotations

import json

import nomad
import pytest
from nomad.api.exceptions import (
    BadRequestNomadException,
    BaseNomadException,
    URLNotAuthorizedNomadException,
    URLNotFoundNomadException,
)

from demo.nomad_standin import NomadStandin
from demo.nomad_standin.templates import go_quote, parse_env, to_json_item
from tests.nomad_standin.test_standin import (
    PARENT,
    dispatch,
    error_of,
    parameterized_job,
    python_rewriter,
)

# Prints the variables the task got, as JSON, and exits.
SHOW_ENV = "import json, os, sys; print(json.dumps({k: os.environ.get(k) for k in sys.argv[1:]}))"
SECRET = 'pa ss#"wo\\rd<&>'


def env_template(path: str, *keys: str, **overrides) -> dict:
    lines = "".join(f"{key}={{{{ .{key} | toJSON }}}}\n" for key in keys)
    return {
        "EmbeddedTmpl": f'{{{{ with nomadVar "{path}" }}}}\n{lines}{{{{ end }}}}\n',
        "DestPath": "secrets/env.env",
        "Envvars": True,
        "ChangeMode": "noop",
        "ErrMissingKey": True,
        **overrides,
    }


def showing_job(*keys: str, templates=None, job_id: str = PARENT, **task) -> dict:
    if templates is None:
        templates = [env_template(f"nomad/jobs/{job_id}", *keys)]
    return parameterized_job(
        job_id,
        Config={"command": "python", "args": ["-c", SHOW_ENV, *keys]},
        Templates=templates,
        **task,
    )


@pytest.fixture
def standin():
    with NomadStandin(command_rewriter=python_rewriter, time_scale=0.01, host_env={}) as s:
        yield s
        assert s.internal_errors == []


@pytest.fixture
def client(standin):
    return nomad.Nomad(address=standin.address, timeout=5)


def shown(standin: NomadStandin, child: str) -> dict:
    standin.wait_for_job(child, "dead")
    return json.loads(standin.logs(child))


# ----------------------------------------------------------------------------- variables


def test_put_get_list_and_delete_a_variable(client, standin):
    written = client.variable.create_variable(
        "nomad/jobs/example", {"Items": {"DATABASE_URL": "postgres://u:p@db/x"}}
    )
    assert written["Path"] == "nomad/jobs/example"
    assert written["Namespace"] == "default"
    assert written["Items"] == {"DATABASE_URL": "postgres://u:p@db/x"}
    assert written["CreateIndex"] == written["ModifyIndex"] > 0
    assert "Lock" not in written
    assert standin.requests[-1]["method"] == "PUT"
    assert standin.requests[-1]["path"] == "/v1/var/nomad/jobs/example"

    again = client.variable.create_variable("nomad/jobs/example", {"Items": {"A": "b"}})
    assert again["CreateIndex"] == written["CreateIndex"]
    assert again["ModifyIndex"] > written["ModifyIndex"]
    assert client.variable.get_variable("nomad/jobs/example")["Items"] == {"A": "b"}

    listed = client.variables.get_variables(prefix="nomad/jobs")
    assert [v["Path"] for v in listed] == ["nomad/jobs/example"]
    assert "Items" not in listed[0]

    response = client.variable.delete_variable("nomad/jobs/example")
    assert (response.status_code, response.text) == (204, "")
    with pytest.raises(URLNotFoundNomadException) as excinfo:
        client.variable.get_variable("nomad/jobs/example")
    assert error_of(excinfo) == (404, "variable not found")
    # Deleting what is not there is no error.
    assert client.variable.delete_variable("nomad/jobs/example").status_code == 204


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("nomad/jobs/x", {}, 400, "variable missing required Items object"),
        ("nomad/jobs/x", {"Items": {}}, 400, "variable missing required Items object"),
        (
            "nomad/jobs/x",
            {"Items": {"A": 1}},
            400,
            "json: cannot unmarshal number into Go struct field VariableDecrypted.Items "
            "of type string",
        ),
        ("bad.path", {"Items": {"A": "b"}}, 400, 'RPC Error:: 400,invalid path "bad.path"'),
        (
            "nomad",
            {"Items": {"A": "b"}},
            400,
            'RPC Error:: 400,"nomad" is a reserved top-level directory path, but you may '
            'write variables to "nomad/jobs", "nomad/job-templates", "nomad/sentinel", or below',
        ),
        (
            "nomad/other",
            {"Items": {"A": "b"}},
            400,
            'RPC Error:: 400,only paths at "nomad/jobs" or "nomad/job-templates" and below '
            'are valid paths under the top-level "nomad" directory',
        ),
        (
            "nomad/jobs/big",
            {"Items": {"A": "x" * 65536}},
            400,
            "RPC Error:: 400,variables are limited to 64KiB in total size",
        ),
    ],
)
def test_variables_nomad_refuses(client, path, body, status, message):
    with pytest.raises(BaseNomadException) as excinfo:
        client.variable.create_variable(path, body)
    assert error_of(excinfo) == (status, message)
    with pytest.raises(URLNotFoundNomadException):
        client.variable.get_variable(path)


def test_check_and_set(client):
    with pytest.raises(BaseNomadException) as excinfo:
        client.variable.create_variable("nomad/jobs/x", {"Items": {"A": "b"}}, cas=5)
    assert excinfo.value.nomad_resp.status_code == 409
    first = client.variable.create_variable("nomad/jobs/x", {"Items": {"A": "b"}}, cas=0)
    with pytest.raises(BaseNomadException) as excinfo:
        client.variable.create_variable("nomad/jobs/x", {"Items": {"A": "c"}}, cas=0)
    conflict = excinfo.value.nomad_resp
    assert conflict.status_code == 409
    assert conflict.json()["Items"] == {"A": "b"}
    client.variable.create_variable("nomad/jobs/x", {"Items": {"A": "c"}}, cas=first["ModifyIndex"])
    assert client.variable.get_variable("nomad/jobs/x")["Items"] == {"A": "c"}


def test_variables_are_per_namespace(standin):
    lab = nomad.Nomad(address=standin.address, namespace="lab")
    default = nomad.Nomad(address=standin.address)
    lab.variable.create_variable("nomad/jobs/x", {"Items": {"A": "b"}}, namespace="lab")
    assert standin.variable("nomad/jobs/x", "lab")["Namespace"] == "lab"
    with pytest.raises(URLNotFoundNomadException):
        default.variable.get_variable("nomad/jobs/x")


# ----------------------------------------------------------------------------- templates


def test_an_env_template_puts_the_variable_in_the_task_environment(client, standin):
    client.variable.create_variable(
        f"nomad/jobs/{PARENT}", {"Items": {"DB_PASSWORD": SECRET, "TOKEN": "t-1"}}
    )
    template = env_template(f"nomad/jobs/{PARENT}", "DB_PASSWORD", "TOKEN")
    client.jobs.register_job(
        showing_job("DB_PASSWORD", "TOKEN", "REFINERY_KIND", templates=[template])
    )
    registered = client.job.get_job(PARENT)["TaskGroups"][0]["Tasks"][0]["Templates"][0]
    assert registered["DestPath"] == "secrets/env.env"
    assert registered["Envvars"] is True
    assert (registered["Splay"], registered["Perms"], registered["LeftDelim"]) == (
        5_000_000_000,
        "0644",
        "{{",
    )
    child = dispatch(client)["DispatchedJobID"]
    # A dispatched child reads its parent's variable (nomad/jobs/<parent>).
    assert shown(standin, child) == {
        "DB_PASSWORD": SECRET,
        "TOKEN": "t-1",
        "REFINERY_KIND": "downloader",
    }
    [alloc] = client.job.get_allocations(child)
    rendered = standin.allocation_file(alloc["ID"], "run", "secrets/env.env")
    assert f"DB_PASSWORD={to_json_item(SECRET)}" in rendered
    assert "pa ss#" not in json.dumps(client.job.get_job(child))  # the job holds no value


def test_template_env_overrides_the_task_env(client, standin):
    client.variable.create_variable(f"nomad/jobs/{PARENT}", {"Items": {"REFINERY_KIND": "tpl"}})
    client.jobs.register_job(showing_job("REFINERY_KIND"))
    assert shown(standin, dispatch(client)["DispatchedJobID"]) == {"REFINERY_KIND": "tpl"}


def test_a_missing_variable_blocks_the_task_until_it_is_written(client, standin):
    client.jobs.register_job(showing_job("TOKEN"))
    child = dispatch(client)["DispatchedJobID"]

    def waiting():  # called under the stand-in's lock: no HTTP here
        allocs = standin.allocations(child)
        events = allocs[0]["TaskStates"]["run"]["Events"] if allocs else []
        return [e for e in events if e["Type"] == "Template"]

    [event] = standin.wait_for(waiting)
    assert (
        event["DisplayMessage"] == f"Missing: nomad.var.block(nomad/jobs/{PARENT}@default.global)"
    )
    assert client.job.get_job(child)["Status"] == "running"
    [alloc] = client.job.get_allocations(child)
    assert (alloc["ClientStatus"], alloc["TaskStates"]["run"]["State"]) == ("pending", "pending")

    client.variable.create_variable(f"nomad/jobs/{PARENT}", {"Items": {"TOKEN": "late"}})
    assert shown(standin, child) == {"TOKEN": "late"}


def test_a_missing_key_fails_the_task_with_nomads_event(client, standin):
    client.variable.create_variable(f"nomad/jobs/{PARENT}", {"Items": {"OTHER": "x"}})
    client.jobs.register_job(showing_job("TOKEN"))
    child = dispatch(client)["DispatchedJobID"]
    standin.wait_for_job(child, "dead")
    [alloc] = client.job.get_allocations(child)
    assert alloc["ClientStatus"] == "failed"
    state = alloc["TaskStates"]["run"]
    assert state["Failed"] is True
    [killing] = [e for e in state["Events"] if e["Type"] == "Killing"]
    assert killing["FailsTask"] is True
    assert killing["DisplayMessage"].startswith("Template failed: ")
    assert 'map has no entry for key "TOKEN"' in killing["DisplayMessage"]
    assert standin.logs(child) == ""  # the command never ran


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (
            {"DestPath": "secrets/env.env"},
            "Must specify a source path or have an embedded template",
        ),
        ({"EmbeddedTmpl": "x"}, "Must specify a destination for the template"),
        (
            {"EmbeddedTmpl": "x", "DestPath": "../../../etc/passwd"},
            "destination escapes allocation directory",
        ),
        (
            {"EmbeddedTmpl": "x", "DestPath": "a", "ChangeMode": "sometimes"},
            "Invalid change mode. Must be one of the following: noop, signal, script, restart",
        ),
        (
            {"EmbeddedTmpl": "x", "DestPath": "a", "ChangeMode": "signal", "Envvars": True},
            "cannot use signals with env var templates",
        ),
    ],
)
def test_invalid_templates_are_refused_as_nomad_does(client, template, message):
    with pytest.raises(BaseNomadException) as excinfo:
        client.jobs.register_job(showing_job(templates=[template]))
    status, body = error_of(excinfo)
    assert status == 500
    assert "Template 1 validation failed" in body
    assert message in body


def test_a_template_duration_must_be_nanoseconds(client):
    with pytest.raises(BadRequestNomadException) as excinfo:
        client.jobs.register_job(showing_job(templates=[env_template("x", "A", Splay="5s")]))
    assert "Template" in error_of(excinfo)[1] and "Splay" in error_of(excinfo)[1]


def test_two_templates_with_one_destination(client):
    same = env_template("nomad/jobs/x", "A")
    with pytest.raises(BaseNomadException) as excinfo:
        client.jobs.register_job(showing_job(templates=[same, dict(same)]))
    assert "Template 2 has same destination as 1" in error_of(excinfo)[1]


def test_go_quoting_and_env_parsing_round_trip():
    for value in (SECRET, "plain", "é ü", "tab\there", "a=b=c", "#not a comment", "'single'"):
        assert parse_env(f"KEY={to_json_item(value)}\n") == {"KEY": value}
    assert go_quote("a\x7fb") == '"a\\x7fb"'
    assert to_json_item("<&>") == '"\\u003c\\u0026\\u003e"'
    assert parse_env("A=unquoted # comment\nB=\n\n# c\nexport C='x y'\n") == {
        "A": "unquoted",
        "C": "x y",
    }


# ----------------------------------------------------------------------------- ACLs


def test_with_acls_a_task_reads_only_its_own_variables(standin):
    standin.strict_token = "management"
    client = nomad.Nomad(address=standin.address, token="management")
    client.variable.create_variable("nomad/jobs/OTHER_JOB", {"Items": {"TOKEN": "theirs"}})
    client.jobs.register_job(
        showing_job("TOKEN", templates=[env_template("nomad/jobs/OTHER_JOB", "TOKEN")])
    )
    child = dispatch(client)["DispatchedJobID"]
    standin.wait_for_job(child, "dead")
    [alloc] = client.job.get_allocations(child)
    messages = [e["DisplayMessage"] for e in alloc["TaskStates"]["run"]["Events"]]
    assert (
        "Template failed: nomad.var.block(nomad/jobs/OTHER_JOB@default.global): "
        "Unexpected response code: 403 (Permission denied)"
    ) in messages


def test_a_workload_identity_in_the_environment(standin):
    standin.strict_token = "management"
    client = nomad.Nomad(address=standin.address, token="management")
    client.variable.create_variable(f"nomad/jobs/{PARENT}", {"Items": {"TOKEN": "ours"}})
    client.variable.create_variable("nomad/jobs/OTHER_JOB", {"Items": {"TOKEN": "theirs"}})
    # The task reads variables over the API with the NOMAD_TOKEN Nomad gave it.
    script = (
        "import os, sys, nomad, json; "
        "n = nomad.Nomad(address=sys.argv[1]); "
        "own = n.variable.get_variable(sys.argv[2])['Items']; "
        "other = write = None\n"
        "try: n.variable.get_variable('nomad/jobs/OTHER_JOB')\n"
        "except Exception as e: other = e.nomad_resp.status_code\n"
        "try: n.variable.create_variable(sys.argv[2], {'Items': {'TOKEN': 'mine'}})\n"
        "except Exception as e: write = e.nomad_resp.status_code\n"
        "print(json.dumps({'own': own, 'other': other, 'write': write, "
        "'jobs': len(n.jobs.get_jobs())}))"
    )
    client.jobs.register_job(
        parameterized_job(
            Config={
                "command": "python",
                "args": ["-c", script, standin.address, f"nomad/jobs/{PARENT}"],
            },
            Identity={"Env": True},
        )
    )
    registered = client.job.get_job(PARENT)["TaskGroups"][0]["Tasks"][0]["Identity"]
    assert (registered["Name"], registered["Audience"], registered["Env"]) == (
        "default",
        ["nomadproject.io"],
        True,
    )
    child = dispatch(client)["DispatchedJobID"]
    standin.wait_for_job(child, "dead", timeout=20)
    assert json.loads(standin.logs(child)) == {
        "own": {"TOKEN": "ours"},
        "other": 403,
        "write": 403,
        "jobs": 2,
    }
    # Once its allocation is over the identity is refused.
    token = next(iter(standin._identities))
    with pytest.raises(URLNotAuthorizedNomadException):
        nomad.Nomad(address=standin.address, token=token).jobs.get_jobs()
    # A workload identity never writes variables.
    assert standin.variable(f"nomad/jobs/{PARENT}")["Items"] == {"TOKEN": "ours"}
