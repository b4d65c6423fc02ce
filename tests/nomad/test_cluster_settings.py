"""Cluster-mode settings whose effect is checked end to end: REFINERY_NOMAD_TASK_ENV,
NOMAD_CACERT (a real TLS server on loopback) and a scheduled survey's launcher
(the command its periodic job runs, run as Nomad would, then the survey it queued)."""

from __future__ import annotations

import http.server
import json
import ssl
import subprocess
import threading

import pytest

from common.models import Batch, JobState, SurveyJob
from runner.nomad.client import nomad_client
from runner.nomad.specs import all_jobs
from runner.nomad.task_env import task_settings
from tests.nomad.conftest import run_on_this_machine


def test_refinery_nomad_task_env_copies_the_variables_it_names_and_no_others(settings):
    settings.REFINERY_NOMAD_TASK_ENV = ["LAB_PROXY", "LAB_API_TOKEN"]
    environ = {
        "LAB_PROXY": "http://proxy.lab.example:3128",
        "LAB_API_TOKEN": "lab-token-0123456789",
        "LAB_UNLISTED": "not for the tasks",
    }
    given = task_settings(environ)
    assert given.env["LAB_PROXY"] == "http://proxy.lab.example:3128"
    assert given.secrets["LAB_API_TOKEN"] == "lab-token-0123456789"  # through a Variable
    assert "LAB_API_TOKEN" not in given.env
    assert "LAB_UNLISTED" not in given.all()
    settings.REFINERY_NOMAD_TASK_ENV = []
    assert not {"LAB_PROXY", "LAB_API_TOKEN"} & set(task_settings(environ).all())


@pytest.fixture
def tls_nomad(tmp_path):
    """An HTTPS server on 127.0.0.1 with a self-signed certificate, answering
    GET /v1/jobs as Nomad does with no jobs; yields (address, the CA file)."""
    cert, key = tmp_path / "nomad.pem", tmp_path / "nomad.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", key, "-out", cert, "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps([] if self.path.startswith("/v1/jobs") else {}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}", str(cert)
    server.shutdown()
    server.server_close()


def test_nomad_cacert_is_the_ca_the_nomad_client_trusts(settings, tls_nomad, manage):
    address, ca_file = tls_nomad
    settings.REFINERY_NOMAD_ADDR = address
    settings.REFINERY_NOMAD_TOKEN = settings.REFINERY_NOMAD_NAMESPACE = ""
    settings.REFINERY_NOMAD_REGION = ""
    settings.REFINERY_NOMAD_CACERT = ""
    with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
        nomad_client().jobs.get_jobs()
    settings.REFINERY_NOMAD_CACERT = ca_file
    assert nomad_client().jobs.get_jobs() == []
    # The setting comes from NOMAD_CACERT, as the Nomad CLI's does.
    show = "from django.conf import settings; print(settings.REFINERY_NOMAD_CACERT)"
    out = manage("shell", "-v0", "-c", show, env={"NOMAD_CACERT": ca_file}).stdout
    assert out.strip() == ca_file


@pytest.mark.django_db(transaction=True)
def test_a_scheduled_surveys_launcher_queues_the_survey_that_a_worker_then_runs(
    settings, subprocess_env, manage, tmp_path
):
    folder = tmp_path / "runs"
    folder.mkdir()
    for i in range(2):
        (folder / f"run-{i}.txt").write_text(f"run {i}\n")
    settings.REFINERY_SCHEDULED_SURVEYS = [
        {"name": "lab-runs", "cron": "*/30 * * * *", "args": ["local_files", str(folder)]}
    ]
    [periodic] = [job for job in all_jobs() if job["ID"] == "REFINERY_SCHEDULED_SURVEY_LAB_RUNS"]
    [task] = periodic["TaskGroups"][0]["Tasks"]
    argv = run_on_this_machine([task["Config"]["command"], *task["Config"]["args"]])
    # What the periodic job's task runs, as Nomad would launch it at its time.
    launched = subprocess.run(
        argv, env={**subprocess_env(), "REFINERY_DISPATCHER": "local"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert launched.returncode == 0, launched.stderr
    survey = SurveyJob.objects.get()
    assert survey.state == JobState.QUEUED and survey.source == "local_files"
    assert f"queued survey job {survey.pk}" in launched.stdout
    manage("worker", "--until-idle", "--kind", "survey", timeout=120)
    survey.refresh_from_db()
    assert survey.state == JobState.SUCCEEDED, survey.failure_reason
    assert sorted(Batch.objects.values_list("accession", flat=True)) == ["run-0.txt", "run-1.txt"]
