"""A foreground `manage.py survey` runs under a worker's supervision: it beats,
so the Foreman does not take a long survey for lost, and it has a runtime limit."""

import time

import pytest

from common.models import SurveyJob
from foreman.passes import Foreman
from tests.ensembl_fixtures import FUNGI
from tests.foreman.helpers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

SPECIES_LIST = f"/info/genomes/division/{FUNGI}"


def ensembl_env(server) -> dict:
    return {
        "ENSEMBL_REST_URL": server.rest_url,
        "ENSEMBL_FTP_URL": server.ftp_url,
        "ENSEMBL_GENOMES_FTP_URL": server.divisions_ftp_url,
    }


def test_a_survey_longer_than_the_lease_is_not_declared_lost(ensembl, start_manage, settings):
    """The attack: with a survey longer than the heartbeat lease, the Foreman
    declared it lost and queued another while the first went on."""
    settings.REFINERY_HEARTBEAT_LEASE_S = 2
    ensembl.delay(SPECIES_LIST, seconds=6, protocols=("http",))
    survey = start_manage(
        "survey", "ensembl", "--division", FUNGI,
        env={**ensembl_env(ensembl), "REFINERY_HEARTBEAT_LEASE_S": "2"},
    )  # fmt: skip
    job = wait_for(lambda: SurveyJob.objects.filter(state="running").first(), 30, "the survey")
    foreman, passes, deadline = Foreman(), 0, time.monotonic() + 60
    while survey.poll() is None and time.monotonic() < deadline:
        foreman.run_pass()
        passes += 1
        time.sleep(0.5)
    output = survey.communicate(timeout=60)[0]
    assert survey.returncode == 0, output
    job.refresh_from_db()
    assert passes >= 8  # the Foreman looked, every half second, while the survey ran 6 s
    assert job.state == "succeeded" and not job.retried
    assert SurveyJob.objects.count() == 1  # no second attempt was queued
    assert (job.end_time - job.start_time).total_seconds() >= 5
    assert "batch(es) found" in output


def test_a_foreground_survey_past_its_runtime_limit_is_stopped(ensembl, manage):
    ensembl.delay(SPECIES_LIST, seconds=30, protocols=("http",))
    result = manage(
        "survey", "ensembl", "--division", FUNGI,
        env={**ensembl_env(ensembl), "REFINERY_SURVEY_RUNTIME_LIMIT_S": "1"},
        check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert "exceeded runtime limit (1 s)" in result.stderr
    job = SurveyJob.objects.get()
    assert job.state == "failed" and job.failure_reason == "exceeded runtime limit (1 s)"
    assert job.log_location  # its output was kept
