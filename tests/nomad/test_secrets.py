"""Attacks on cluster mode's secrets and on tasks that cannot start (issue 9, items 12
and 13), through `manage.py nomad specs|register` and the stand-in.

- The job specifications, as printed and as Nomad holds them, carry no secret and
  no Nomad token: the secrets reach the tasks through each job's Nomad Variable.
- `register` refuses, and registers nothing, when the tasks could not start.
"""

from __future__ import annotations

import json
from io import StringIO

import nomad
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

DB_PASSWORD = "db-pass-123456"
CLUSTER_ENV = {
    "DATABASE_URL": f"postgres://refinery:{DB_PASSWORD}@db.internal:5432/refinery",
    "DJANGO_SECRET_KEY": "django-secret-key-value-0123456789",
    "NOMAD_TOKEN": "nomad-token-value-0123456789",
    "NOMAD_ADDR": "http://10.42.1.10:4646",
    "REFINERY_TEMP_STORAGE": "s3://refinery-temp/temp",
    "REFINERY_PERMANENT_STORAGE": "s3://refinery-permanent/results",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-access-key-0123456789",
    "REFINERY_NOTIFY_WEBHOOK": "https://hooks.example/services/T0/B0/webhook-secret-0123",
    "REFINERY_WEBHOOK_SECRET": "run-webhook-signing-key-0123",
    "ENSEMBL_FTP_URL": "ftp://mirror-user:mirror-pass-0123@ftp.mirror.internal/pub",
}
SECRET_VALUES = (
    DB_PASSWORD,
    CLUSTER_ENV["DJANGO_SECRET_KEY"],
    CLUSTER_ENV["NOMAD_TOKEN"],
    CLUSTER_ENV["AWS_SECRET_ACCESS_KEY"],
    "webhook-secret-0123",
    "run-webhook-signing-key-0123",
    "mirror-pass-0123",
)
SECRET_NAMES = (
    "DATABASE_URL",
    "DJANGO_SECRET_KEY",
    "AWS_SECRET_ACCESS_KEY",
    "REFINERY_NOTIFY_WEBHOOK",
    "ENSEMBL_FTP_URL",
)


@pytest.fixture
def cluster_env(monkeypatch, settings):
    for name, value in CLUSTER_ENV.items():
        monkeypatch.setenv(name, value)
    settings.REFINERY_NOMAD_TASK_ENV = ["AWS_SECRET_ACCESS_KEY"]
    return CLUSTER_ENV


def run(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def tasks_of(job: dict) -> list[dict]:
    return [task for group in job["TaskGroups"] for task in group["Tasks"]]


def check_no_secret_in(job: dict) -> None:
    text = json.dumps(job)
    for value in SECRET_VALUES:
        assert value not in text, f"{job['ID']} holds a secret"
    for task in tasks_of(job):
        assert "NOMAD_TOKEN" not in task["Env"]
        for name in SECRET_NAMES:
            assert name not in task["Env"], f"{job['ID']}: {name} in the task's Env"


def test_nomad_specs_hold_no_secret_and_no_token(cluster_env):
    out, err = run("nomad", "specs")
    for value in SECRET_VALUES:
        assert value not in out + err
    listed = [entry["Job"] for entry in json.loads(out)]
    assert len(listed) > 10
    for job in listed:
        check_no_secret_in(job)
        [task] = tasks_of(job)
        # The secrets are named in a template that reads the job's variable.
        [template] = task["Templates"]
        assert template["EmbeddedTmpl"].startswith(
            f'{{{{ with nomadVar "nomad/jobs/{job["ID"]}" }}}}'
        )
        assert "DATABASE_URL={{ .DATABASE_URL | toJSON }}" in template["EmbeddedTmpl"]
        assert (template["DestPath"], template["Envvars"]) == ("secrets/env.env", True)
        # Plain settings stay in the task's Env.
        assert task["Env"]["REFINERY_TEMP_STORAGE"] == "s3://refinery-temp/temp"
        assert task["Env"]["NOMAD_ADDR"] == "http://10.42.1.10:4646"
    assert "secrets in the Nomad Variable nomad/jobs/REFINERY_FOREMAN: " in err


def test_registered_jobs_hold_no_secret_and_the_variables_hold_them(idle_standin, cluster_env):
    out, _ = run("nomad", "register")
    client = nomad.Nomad(address=idle_standin.address)
    stubs = client.jobs.get_jobs()
    assert len(stubs) > 10
    for stub in stubs:
        check_no_secret_in(client.job.get_job(stub["ID"]))
    for request in idle_standin.requests:
        if request["path"] == "/v1/jobs" and request["method"] == "POST":
            for value in SECRET_VALUES:
                assert value not in request["body"]
    # The operator's Nomad token is in no variable either.
    paths = [v["Path"] for v in client.variables.get_variables(prefix="nomad/jobs/")]
    assert sorted(paths) == sorted(f"nomad/jobs/{stub['ID']}" for stub in stubs)
    for path in paths:
        items = client.variable.get_variable(path)["Items"]
        assert CLUSTER_ENV["NOMAD_TOKEN"] not in json.dumps(items)
        assert items["DATABASE_URL"] == CLUSTER_ENV["DATABASE_URL"]
        assert items["DJANGO_SECRET_KEY"] == CLUSTER_ENV["DJANGO_SECRET_KEY"]
        # Only the Foreman tells operators.
        assert ("REFINERY_NOTIFY_WEBHOOK" in items) == path.endswith("/REFINERY_FOREMAN")
        assert ("REFINERY_WEBHOOK_SECRET" in items) == path.endswith("/REFINERY_FOREMAN")
    assert "created   variable nomad/jobs/REFINERY_PROCESSOR_1024\n" in out
    for value in SECRET_VALUES:
        assert value not in out


def test_a_changed_secret_updates_the_variable_and_not_the_job(
    idle_standin, cluster_env, monkeypatch
):
    run("nomad", "register")
    monkeypatch.setenv("DJANGO_SECRET_KEY", "a-new-django-secret-key-0123456789")
    out, _ = run("nomad", "register")
    assert "updated   variable nomad/jobs/REFINERY_SURVEY_1024 (DJANGO_SECRET_KEY)\n" in out
    assert "unchanged REFINERY_SURVEY_1024\n" in out
    assert "a-new-django" not in out
    client = nomad.Nomad(address=idle_standin.address)
    items = client.variable.get_variable("nomad/jobs/REFINERY_SURVEY_1024")["Items"]
    assert items["DJANGO_SECRET_KEY"] == "a-new-django-secret-key-0123456789"


def test_variables_go_to_the_namespace_of_the_jobs(idle_standin, cluster_env, settings):
    settings.REFINERY_NOMAD_NAMESPACE = "lab"
    run("nomad", "register")
    lab = nomad.Nomad(address=idle_standin.address, namespace="lab")
    assert lab.job.get_job("REFINERY_SURVEY_1024")["Namespace"] == "lab"
    assert idle_standin.variable("nomad/jobs/REFINERY_SURVEY_1024", "lab") is not None
    assert idle_standin.variable("nomad/jobs/REFINERY_SURVEY_1024") is None


# --- tasks that could not start -----------------------------------------------------------


def nothing_registered(standin) -> bool:
    client = nomad.Nomad(address=standin.address)
    return client.jobs.get_jobs() == [] and client.variables.get_variables() == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"DJANGO_SECRET_KEY": None},
            "DJANGO_SECRET_KEY is not set: the tasks run the production settings "
            "(refinery.settings_production), which refuse to start without it",
        ),
        (
            {"REFINERY_PERMANENT_STORAGE": "/srv/refinery/results"},
            "REFINERY_PERMANENT_STORAGE is the local folder /srv/refinery/results: tasks on "
            "other machines cannot read it. Set it to an s3://bucket/prefix URL",
        ),
        (
            {"REFINERY_TEMP_STORAGE": None},
            "REFINERY_TEMP_STORAGE is not set: each task would keep files in a folder",
        ),
        (
            {"DATABASE_URL": "sqlite:///var/refinery.sqlite3"},
            "DATABASE_URL is a SQLite file: in cluster mode every task would have a database "
            "of its own",
        ),
        ({"DATABASE_URL": None}, "DATABASE_URL is not set"),
        (
            {"DATABASE_URL": "mysql://u:p@h/db"},
            "DATABASE_URL: unsupported scheme 'mysql'; use sqlite:/// or postgres://",
        ),
        (
            {"REFINERY_HSTS_SECONDS": "a year"},
            "the tasks' settings do not load: ImproperlyConfigured: REFINERY_HSTS_SECONDS "
            "must be a whole number, not 'a year'",
        ),
    ],
)
def test_register_refuses_specs_whose_tasks_cannot_start(
    idle_standin, cluster_env, monkeypatch, change, expected
):
    for name, value in change.items():
        if value is None:
            monkeypatch.delenv(name)
        else:
            monkeypatch.setenv(name, value)
    for args in (("nomad", "register"), ("nomad", "register", "--dry-run")):
        with pytest.raises(CommandError) as excinfo:
            run(*args)
        message = str(excinfo.value)
        assert message.startswith("the tasks could not start, so nothing was registered:\n  - ")
        assert expected in message
        for value in SECRET_VALUES:
            assert value not in message
    assert nothing_registered(idle_standin)
    assert not [r for r in idle_standin.requests if r["method"] in ("PUT", "POST")]
    # `specs` shows the same problems, and still prints the specifications.
    out, err = run("nomad", "specs")
    assert expected in err
    assert json.loads(out)


def test_register_names_every_problem_at_once(idle_standin, cluster_env, monkeypatch):
    monkeypatch.delenv("DJANGO_SECRET_KEY")
    monkeypatch.setenv("REFINERY_TEMP_STORAGE", "/tmp/refinery")
    with pytest.raises(CommandError) as excinfo:
        run("nomad", "register")
    lines = str(excinfo.value).splitlines()
    problems = [line for line in lines if line.startswith("  - ")]
    assert [p.split(" ")[3] for p in problems] == ["DJANGO_SECRET_KEY", "REFINERY_TEMP_STORAGE"]
    assert nothing_registered(idle_standin)


def test_register_refuses_a_specification_that_would_show_a_secret(
    idle_standin, cluster_env, settings
):
    # A scheduled survey's arguments are the periodic job's command line, in clear.
    settings.REFINERY_SCHEDULED_SURVEYS = [
        {
            "name": "mirror",
            "cron": "0 3 * * *",
            "args": ["ensembl", "--species", "ftp://u:leaked-pass-123@mirror/pub"],
        },
        {"name": "key", "cron": "0 4 * * *", "args": ["ensembl", CLUSTER_ENV["DJANGO_SECRET_KEY"]]},
    ]
    with pytest.raises(CommandError) as excinfo:
        run("nomad", "register")
    message = str(excinfo.value)
    assert (
        "REFINERY_SCHEDULED_SURVEY_MIRROR would show credentials in a URL in its "
        "specification (TaskGroups[0].Tasks[0].Config.args[5]): keep credentials in settings"
    ) in message
    assert (
        "REFINERY_SCHEDULED_SURVEY_KEY would show the value of DJANGO_SECRET_KEY in its "
        "specification (TaskGroups[0].Tasks[0].Config.args[4])"
    ) in message
    assert "leaked-pass-123" not in message
    assert nothing_registered(idle_standin)
    out, _ = run("nomad", "specs")
    assert "leaked-pass-123" not in out
    assert CLUSTER_ENV["DJANGO_SECRET_KEY"] not in out
