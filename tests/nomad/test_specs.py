"""Job specifications: generated from one definition, accepted by the stand-in,
registered idempotently; `manage.py nomad specs|register|status`."""

from __future__ import annotations

import json

import nomad
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError

from common.models.choices import JobKind
from runner.nomad import specs
from runner.nomad.register import differences, register_all
from runner.nomad.specs import SpecOptions, all_jobs, all_specs
from runner.nomad.worker_classes import parent_for, worker_classes

SECRET_ENV = {
    "DATABASE_URL": "postgres://refinery:db-pass-123456@db.internal:5432/refinery",
    "DJANGO_SECRET_KEY": "django-secret-key-value-0123456789",
    "NOMAD_TOKEN": "nomad-token-value-0123456789",
    "NOMAD_ADDR": "http://10.42.1.10:4646",
    "REFINERY_TEMP_STORAGE": "s3://refinery-temp/temp",
    "REFINERY_PERMANENT_STORAGE": "s3://refinery-permanent/results",
    "AWS_DEFAULT_REGION": "eu-west-1",
}


@pytest.fixture
def cluster_env(monkeypatch):
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("REFINERY_MAX_RETRIES", "4")
    monkeypatch.setenv("ENSEMBL_REST_URL", "http://ensembl-mirror.internal")
    monkeypatch.setenv("REFINERY_HOME", "/home/me/var")
    monkeypatch.setenv("UNRELATED", "x")
    return SECRET_ENV


def parents(jobs: list[dict]) -> dict[str, dict]:
    return {job["ID"]: job for job in jobs if "ParameterizedJob" in job}


def test_one_parameterized_job_per_kind_and_ram_tier(settings, cluster_env):
    settings.REFINERY_NOMAD_GPU_PIPELINES = []  # the GPU tier: see the GPU test below
    settings.REFINERY_NOMAD_REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/"
    settings.REFINERY_NOMAD_IMAGE_TAG = "v7"
    jobs = all_jobs()
    by_id = parents(jobs)
    expected = {
        f"REFINERY_{kind.upper()}_{ram}"
        for kind in JobKind.values
        for ram in settings.REFINERY_NOMAD_RAM_TIERS_MB[kind]
    }
    assert set(by_id) == expected
    assert "REFINERY_PROCESSOR_4096" in by_id and "REFINERY_DOWNLOADER_16384" in by_id
    registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    images = {"survey": "downloaders", "downloader": "downloaders", "processor": "transcriptome"}
    for job_id, job in by_id.items():
        kind, ram = job["Meta"]["refinery_kind"], int(job["Meta"]["refinery_ram_mb"])
        assert job_id == f"REFINERY_{kind.upper()}_{ram}"
        assert job["Type"] == "batch"
        assert job["Datacenters"] == ["dc1"]
        assert job["ParameterizedJob"] == {
            "Payload": "forbidden",
            "MetaRequired": ["JOB_ID", "JOB_KIND"],
        }
        [group] = job["TaskGroups"]
        assert group["Count"] == 1
        assert group["RestartPolicy"] == {"Attempts": 0, "Mode": "fail"}
        assert group["ReschedulePolicy"] == {"Attempts": 0, "Unlimited": False}
        assert group["Volumes"]["refinery-data"] == {
            "Name": "refinery-data",
            "Type": "host",
            "Source": "refinery-data",
            "ReadOnly": False,
        }
        [task] = group["Tasks"]
        assert task["Driver"] == "docker"
        assert task["Config"] == {
            "image": f"{registry}/refinery-{images[kind]}:v7",
            "command": "python",
            "args": ["manage.py", "run_job", "${NOMAD_META_JOB_KIND}", "${NOMAD_META_JOB_ID}"],
        }
        assert task["Resources"] == {
            "CPU": settings.REFINERY_NOMAD_CPU_MHZ[kind],
            "MemoryMB": ram,
        }
        assert task["KillTimeout"] == 30 * 1_000_000_000
        assert task["VolumeMounts"] == [
            {"Volume": "refinery-data", "Destination": "/var/lib/refinery", "ReadOnly": False}
        ]
        env = task["Env"]
        for name in ("NOMAD_ADDR", "REFINERY_TEMP_STORAGE", "AWS_DEFAULT_REGION"):
            assert env[name] == cluster_env[name]
        # Secrets reach the task through its job's variable; the Nomad token never does.
        for name in ("DATABASE_URL", "DJANGO_SECRET_KEY", "NOMAD_TOKEN"):
            assert name not in env
        [template] = task["Templates"]
        assert template == {
            "EmbeddedTmpl": (
                f'{{{{ with nomadVar "nomad/jobs/{job_id}" }}}}\n'
                "DATABASE_URL={{ .DATABASE_URL | toJSON }}\n"
                "DJANGO_SECRET_KEY={{ .DJANGO_SECRET_KEY | toJSON }}\n"
                "{{ end }}\n"
            ),
            "DestPath": "secrets/env.env",
            "Envvars": True,
            "ChangeMode": "noop",
            "ErrMissingKey": True,
            "Perms": "0400",
        }
        assert task["Identity"] == {"Env": True, "ChangeMode": "noop"}
        assert env["DJANGO_SETTINGS_MODULE"] == "refinery.settings_production"
        assert env["REFINERY_HOME"] == "/var/lib/refinery"
        assert env["REFINERY_DISPATCHER"] == "nomad"
        assert env["REFINERY_MAX_RETRIES"] == "4"
        assert env["ENSEMBL_REST_URL"] == "http://ensembl-mirror.internal"
        assert "UNRELATED" not in env
        assert all(isinstance(v, str) for v in env.values())


def test_the_foreman_is_a_service_and_scheduled_surveys_are_periodic(settings, cluster_env):
    settings.REFINERY_SCHEDULED_SURVEYS = [
        {"name": "yeast", "cron": "0 3 * * 1", "args": ["ensembl", "--division", "EnsemblFungi"]},
        {"name": "lab-runs", "cron": "*/30 * * * *", "args": ["local_files", "/data/runs"]},
    ]
    by_id = {job["ID"]: job for job in all_jobs(SpecOptions(registry="reg.example", tag="v2"))}
    foreman = by_id["REFINERY_FOREMAN"]
    assert foreman["Type"] == "service"
    [group] = foreman["TaskGroups"]
    assert group["Count"] == 1
    assert group["RestartPolicy"]["Mode"] == "delay"
    [task] = group["Tasks"]
    assert task["Config"]["image"] == "reg.example/refinery-foreman:v2"
    assert task["Config"]["args"] == ["manage.py", "foreman"]
    assert "NOMAD_TOKEN" not in task["Env"]
    # New secrets restart the Foreman; it calls Nomad with its workload identity.
    assert task["Templates"][0]["ChangeMode"] == "restart"
    assert task["Identity"] == {"Env": True, "ChangeMode": "restart"}

    yeast = by_id["REFINERY_SCHEDULED_SURVEY_YEAST"]
    assert yeast["Type"] == "batch"
    assert yeast["Periodic"] == {
        "Enabled": True,
        "SpecType": "cron",
        "Spec": "0 3 * * 1",
        "ProhibitOverlap": True,
        "TimeZone": "UTC",
    }
    [group] = yeast["TaskGroups"]
    assert group["RestartPolicy"]["Attempts"] == 0
    assert group["ReschedulePolicy"]["Attempts"] == 0
    assert group["Tasks"][0]["Config"]["args"] == [
        "manage.py",
        "survey",
        "--queue",
        "ensembl",
        "--division",
        "EnsemblFungi",
    ]
    assert group["Tasks"][0]["Config"]["image"] == "reg.example/refinery-downloaders:v2"
    assert "REFINERY_SCHEDULED_SURVEY_LAB_RUNS" in by_id

    settings.REFINERY_NOMAD_RUN_FOREMAN = False
    assert "REFINERY_FOREMAN" not in {job["ID"] for job in all_jobs()}


@pytest.mark.parametrize(
    ("surveys", "message"),
    [
        ({"name": "x"}, "must be a JSON list"),
        ([{"name": "x", "cron": "daily", "args": ["ensembl"]}], "must be a cron expression"),
        ([{"name": "x", "cron": "0 3 * * *", "args": ["nowhere"]}], "starting with a source"),
        ([{"name": "a b", "cron": "0 3 * * *", "args": ["ensembl"]}], "must be a word"),
        ([{"name": "x", "cron": "0 3 * * *", "args": [], "when": 1}], '{"name": ...'),
    ],
)
def test_bad_scheduled_surveys_are_clear_errors(settings, surveys, message):
    settings.REFINERY_SCHEDULED_SURVEYS = surveys
    with pytest.raises(ImproperlyConfigured, match=message.replace("{", r"\{").replace(".", r"\.")):
        all_jobs()


def test_gpu_pipelines_get_their_own_parents_with_a_gpu_device(settings):
    # Basecalling (Dorado) needs a GPU by default.
    assert settings.REFINERY_NOMAD_GPU_PIPELINES == ["basecalling"]
    settings.REFINERY_NOMAD_GPU_PIPELINES = []
    assert [w.name for w in worker_classes()] == ["survey", "downloader", "processor"]
    assert not any("Devices" in job["TaskGroups"][0]["Tasks"][0]["Resources"] for job in all_jobs())
    settings.REFINERY_NOMAD_GPU_PIPELINES = ["transcriptome_index_long"]
    gpu = {job_id: job for job_id, job in parents(all_jobs()).items() if "_GPU_" in job_id}
    tiers = settings.REFINERY_NOMAD_RAM_TIERS_MB["processor"]
    assert set(gpu) == {f"REFINERY_PROCESSOR_GPU_{ram}" for ram in tiers}
    for job in gpu.values():
        resources = job["TaskGroups"][0]["Tasks"][0]["Resources"]
        assert resources["Devices"] == [{"Name": "nvidia/gpu", "Count": 1}]
        assert job["Meta"]["refinery_gpu"] == "true"
        assert job["TaskGroups"][0]["Tasks"][0]["Env"]["REFINERY_DISPATCHER"] == "nomad"
    settings.REFINERY_NOMAD_GPU_PIPELINES = ["no_such_pipeline"]
    with pytest.raises(ImproperlyConfigured, match="no_such_pipeline"):
        all_jobs()


def test_tier_choice_and_missing_tiers(settings):
    from common.models import DownloaderJob, ProcessorJob, SurveyJob
    from runner.dispatch import DispatchError

    assert parent_for(SurveyJob(ram_mb=1024)) == "REFINERY_SURVEY_1024"
    assert parent_for(SurveyJob(ram_mb=1025)) == "REFINERY_SURVEY_2048"
    assert parent_for(DownloaderJob(ram_mb=2048)) == "REFINERY_DOWNLOADER_4096"
    assert parent_for(ProcessorJob(ram_mb=100)) == "REFINERY_PROCESSOR_1024"
    assert parent_for(ProcessorJob(ram_mb=12288)) == "REFINERY_PROCESSOR_12288"
    with pytest.raises(DispatchError, match="no Nomad RAM tier of processor jobs holds 70000 MB"):
        parent_for(ProcessorJob(ram_mb=70000))
    settings.REFINERY_NOMAD_GPU_PIPELINES = ["file_summary"]
    assert (
        parent_for(ProcessorJob(ram_mb=3000, pipeline="file_summary"))
        == "REFINERY_PROCESSOR_GPU_4096"
    )
    assert parent_for(ProcessorJob(ram_mb=3000, pipeline="smoke_test")) == (
        "REFINERY_PROCESSOR_4096"
    )
    settings.REFINERY_NOMAD_RAM_TIERS_MB = {**settings.REFINERY_NOMAD_RAM_TIERS_MB, "survey": []}
    with pytest.raises(ImproperlyConfigured, match="REFINERY_NOMAD_RAM_TIERS_MB"):
        all_jobs()


def test_the_stand_in_accepts_every_job_with_the_policies_intact(idle_standin, settings):
    settings.REFINERY_NOMAD_GPU_PIPELINES = ["transcriptome_index_long"]
    settings.REFINERY_SCHEDULED_SURVEYS = [
        {"name": "yeast", "cron": "0 3 * * 1", "args": ["ensembl", "--species", "yeast"]}
    ]
    specs = all_specs()
    jobs = specs.jobs
    results = register_all(specs)
    assert {r.outcome for r in results} == {"created"}
    client = nomad.Nomad(address=idle_standin.address)
    for job in jobs:
        registered = client.job.get_job(job["ID"])
        assert differences(job, registered) == []
        group = registered["TaskGroups"][0]
        if job["ID"] == "REFINERY_FOREMAN":
            assert registered["Type"] == "service"
            continue
        assert registered["Type"] == "batch"
        assert group["RestartPolicy"]["Attempts"] == 0
        assert group["RestartPolicy"]["Mode"] == "fail"
        assert group["ReschedulePolicy"]["Attempts"] == 0
        assert group["ReschedulePolicy"]["Unlimited"] is False
        assert group["Tasks"][0]["KillTimeout"] == 30_000_000_000
    parent = client.job.get_job("REFINERY_PROCESSOR_GPU_4096")
    assert parent["ParameterizedJob"]["MetaRequired"] == ["JOB_ID", "JOB_KIND"]
    assert parent["ParameterizedJob"]["Payload"] == "forbidden"
    assert parent["TaskGroups"][0]["Tasks"][0]["Resources"]["Devices"][0]["Name"] == "nvidia/gpu"
    # Every registration went to POST /v1/jobs with the {"Job": ...} wrapper.
    posts = [r for r in idle_standin.requests if r["method"] == "POST"]
    assert len(posts) == len(jobs)
    assert all(r["path"] == "/v1/jobs" and set(r["json"]) == {"Job"} for r in posts)


def test_register_is_idempotent_and_reports_what_changed(idle_standin, settings, cluster_env):
    assert {r.outcome for r in register_all(all_specs())} == {"created"}
    idle_standin.clear_requests()
    assert {r.outcome for r in register_all(all_specs())} == {"unchanged"}
    assert not [r for r in idle_standin.requests if r["method"] != "GET"]

    settings.REFINERY_NOMAD_IMAGE_TAG = "v2"
    settings.REFINERY_NOMAD_RAM_TIERS_MB = {
        **settings.REFINERY_NOMAD_RAM_TIERS_MB,
        "survey": [1024, 2048, 4096, 8192],
    }
    results = {r.job_id: r for r in register_all(all_specs())}
    assert results["REFINERY_SURVEY_8192"].outcome == "created"
    assert results["nomad/jobs/REFINERY_SURVEY_8192"].outcome == "created"
    assert results["nomad/jobs/REFINERY_SURVEY_1024"].outcome == "unchanged"
    assert results["REFINERY_PROCESSOR_1024"].outcome == "updated"
    assert results["REFINERY_PROCESSOR_1024"].changed == [
        "TaskGroups[0].Tasks[0].Config",
        "TaskGroups[0].Tasks[0].Env",  # the image, for provenance
    ]
    client = nomad.Nomad(address=idle_standin.address)
    image = client.job.get_job("REFINERY_PROCESSOR_1024")["TaskGroups"][0]["Tasks"][0]["Config"]
    assert image["image"] == "refinery-transcriptome:v2"

    # A stopped parent is registered again; a removed variable is a change.
    client.job.deregister_job("REFINERY_SURVEY_1024")
    results = {r.job_id: r for r in register_all(all_specs())}
    assert results["REFINERY_SURVEY_1024"].outcome == "updated"
    assert client.job.get_job("REFINERY_SURVEY_1024")["Stop"] is False
    job = all_jobs()[0]
    job["TaskGroups"][0]["Tasks"][0]["Env"].pop("REFINERY_DISPATCHER")
    assert differences(job, client.job.get_job(job["ID"])) == ["TaskGroups[0].Tasks[0].Env"]


@pytest.mark.django_db
def test_register_command(idle_standin, settings, monkeypatch):
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)
    out = call("nomad", "register", "--registry", "reg.example", "--tag", "v1", "--dry-run")
    assert "created   REFINERY_SURVEY_1024\n" in out
    assert "(dry run: nothing was registered)" in out
    assert idle_standin.children("REFINERY_SURVEY_1024") == []
    assert nomad.Nomad(address=idle_standin.address).jobs.get_jobs() == []
    out = call("nomad", "register", "--registry", "reg.example", "--tag", "v1")
    count = len(all_jobs())
    assert f"{count} created, 0 updated, 0 unchanged" in out
    out = call("nomad", "register", "--registry", "reg.example", "--tag", "v1")
    assert f"0 created, 0 updated, {count} unchanged" in out
    out = call("nomad", "register", "--registry", "reg.example", "--tag", "v2")
    assert f"0 created, {count} updated, 0 unchanged" in out
    assert (
        "updated   REFINERY_PROCESSOR_4096 "
        "(TaskGroups[0].Tasks[0].Config, TaskGroups[0].Tasks[0].Env)" in out
    )
    # A tier that is no longer generated is reported, not removed.
    settings.REFINERY_NOMAD_RAM_TIERS_MB = {
        **settings.REFINERY_NOMAD_RAM_TIERS_MB,
        "survey": [1024],
    }
    out = call("nomad", "register", "--registry", "reg.example", "--tag", "v2")
    assert "not generated any more: REFINERY_SURVEY_2048" in out
    assert SECRET_ENV["NOMAD_TOKEN"] not in out


def call(*args) -> str:
    from io import StringIO

    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue() + err.getvalue()


def test_specs_command_writes_one_file_per_job(tmp_path, monkeypatch):
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)
    listed = json.loads(call_out("nomad", "specs"))
    assert {entry["Job"]["ID"] for entry in listed} == {job["ID"] for job in all_jobs()}
    call("nomad", "specs", "--out", tmp_path / "specs", "--tag", "v3")
    written = sorted(p.name for p in (tmp_path / "specs").iterdir())
    assert written == sorted(f"{job['ID']}.json" for job in all_jobs())
    one = (tmp_path / "specs" / "REFINERY_PROCESSOR_1024.json").read_text()
    task = json.loads(one)["Job"]["TaskGroups"][0]["Tasks"][0]
    assert task["Config"]["image"] == "refinery-transcriptome:v3"
    for value in ("db-pass-123456", SECRET_ENV["DJANGO_SECRET_KEY"], SECRET_ENV["NOMAD_TOKEN"]):
        assert value not in one
    with pytest.raises(CommandError):
        call("nomad", "specs", "--show-secrets")  # there are none to show


def call_out(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_masked_hides_anything_secret_left_in_an_env():
    job = {
        "ID": "X",
        "TaskGroups": [
            {
                "Tasks": [
                    {
                        "Env": {
                            "MY_API_KEY": "k-123456789",
                            "SOME_URL": "https://user:pw-123456@host/x",
                            "PLAIN": "value",
                        }
                    }
                ]
            }
        ],
    }
    env = specs.masked(job)["TaskGroups"][0]["Tasks"][0]["Env"]
    assert env == {
        "MY_API_KEY": "********",
        "SOME_URL": "https://user:********@host/x",
        "PLAIN": "value",
    }


def test_specs_command_shows_no_secret_by_name_pattern(settings, monkeypatch):
    """Any variable whose name holds TOKEN, PASS, SECRET, KEY or WEBHOOK, and any
    URL with a password, whatever the variable is called, stays out of the specs:
    the tasks get them through their Nomad Variable's template."""
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)
    hidden = {
        "REFINERY_FOO_TOKEN": "foo-token-value-0123456789",
        "MY_WEBHOOK": "https://hooks.example.org/services/my-webhook-path",
        "REFINERY_NOTIFY_WEBHOOK": "https://hooks.example.org/services/notify-path",
        "REFINERY_SMTP_PASSWORD": "smtp-password-0123456789",
        "AWS_SECRET_ACCESS_KEY": "aws-secret-access-key-0123456789",
    }
    for name, value in hidden.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ENSEMBL_FTP_URL", "ftp://reader:ftp-pass-4321@mirror.example.org/pub")
    settings.REFINERY_NOMAD_TASK_ENV = ["MY_WEBHOOK", "AWS_SECRET_ACCESS_KEY"]
    out = call("nomad", "specs")  # what it prints, warnings included
    for secret in (*hidden.values(), "ftp-pass-4321"):
        assert secret not in out
    [task] = json.loads(call_out("nomad", "specs"))[0]["Job"]["TaskGroups"][0]["Tasks"]
    for name in ("MY_WEBHOOK", "AWS_SECRET_ACCESS_KEY", "ENSEMBL_FTP_URL"):
        assert name not in task["Env"]
        assert f"{name}={{{{ .{name} | toJSON }}}}" in task["Templates"][0]["EmbeddedTmpl"]
    assert task["Env"]["NOMAD_ADDR"] == SECRET_ENV["NOMAD_ADDR"]  # not secret: readable


def test_specs_command_warns_about_a_local_setup(monkeypatch):
    for name in ("DATABASE_URL", "DJANGO_SECRET_KEY", "NOMAD_ADDR", "REFINERY_TEMP_STORAGE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NOMAD_ADDR", "http://127.0.0.1:4646")
    out = call("nomad", "specs")
    assert "error: the tasks could not start:\n" in out
    assert "  - DATABASE_URL is not set" in out
    assert "  - REFINERY_TEMP_STORAGE is not set" in out
    assert "warning: NOMAD_ADDR is http://127.0.0.1:4646" in out


def test_status_command(registered, dispatcher):
    out = call("nomad", "status")
    assert "REFINERY_PROCESSOR_4096" in out
    assert "1 of 1 nodes take jobs: 400000 MHz CPU, 4000000 MB RAM, 0 GPUs" in out
    assert "not registered" not in out


def test_status_command_when_nothing_is_registered(idle_standin):
    out = call("nomad", "status")
    assert "REFINERY_SURVEY_1024               not registered (`manage.py nomad register`)" in out


def test_commands_say_when_nomad_is_unreachable(idle_standin, cluster_env):
    idle_standin.set_unreachable(True)
    with pytest.raises(CommandError, match=r"cannot reach Nomad at http://127\.0\.0\.1:\d+ to"):
        call("nomad", "status")
    with pytest.raises(CommandError, match="cannot reach Nomad"):
        call("nomad", "register")


def test_every_task_knows_its_image_for_provenance():
    from runner.nomad.specs import all_jobs

    for job in all_jobs():
        for group in job["TaskGroups"]:
            for task in group["Tasks"]:
                assert task["Env"]["REFINERY_DOCKER_IMAGE"] == task["Config"]["image"]


def test_a_watch_is_a_service_with_the_instruments_share_mounted_read_only(settings):
    settings.REFINERY_NOMAD_WATCHES = [
        {"name": "novaseq", "args": ["illumina_runs", "/runs/novaseq"], "volume": "sequencers",
         "mount": "/runs"},
    ]  # fmt: skip
    [watch] = [job for job in all_jobs() if job["ID"] == "REFINERY_WATCH_NOVASEQ"]
    assert watch["Type"] == "service"
    [group] = watch["TaskGroups"]
    [task] = group["Tasks"]
    assert task["Config"]["args"] == ["manage.py", "watch", "illumina_runs", "/runs/novaseq",
                                      "--queue"]  # fmt: skip
    assert group["Volumes"]["sequencers"]["ReadOnly"] is True
    assert {"Volume": "sequencers", "Destination": "/runs", "ReadOnly": True} in task[
        "VolumeMounts"
    ]
    settings.REFINERY_NOMAD_WATCHES = [{"name": "x", "args": ["ensembl", "/runs"]}]
    with pytest.raises(ImproperlyConfigured, match="a source"):
        all_jobs()
    settings.REFINERY_NOMAD_WATCHES = [
        {"name": "x", "args": ["illumina_runs", "/r"], "volume": "v"}
    ]
    with pytest.raises(ImproperlyConfigured, match="give both a host volume"):
        all_jobs()
