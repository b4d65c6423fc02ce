"""The overview in a real headless Chromium, with jobs in every state and runs:
the counts, the failures list and every plot as a browser renders them.

With REFINERY_SCREENSHOTS=<folder>, it also saves the overview and a job page
as PNG there (how the README's screenshots are made)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from common.models import RunState, SequencingRun
from tests.admin.test_browser import browser  # noqa: F401 - the fixture
from tests.admin.test_overview import LONG_REASON, every_state  # noqa: F401 - the fixture

pytestmark = [pytest.mark.browser, pytest.mark.postgres_only]


def log_in(browser, live_server, path: str) -> WebDriverWait:  # noqa: F811
    User.objects.create_superuser("operator", "op@example.org", "a long test password")
    wait = WebDriverWait(browser, 20)
    browser.get(f"{live_server.url}{path}")
    wait.until(expected_conditions.presence_of_element_located((By.NAME, "username")))
    browser.find_element(By.NAME, "username").send_keys("operator")
    browser.find_element(By.NAME, "password").send_keys("a long test password")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait.until(expected_conditions.url_contains(path.split("?")[0]))
    return wait


def test_the_overview_shows_counts_failures_and_three_rendered_plots(
    live_server,
    browser,  # noqa: F811
    every_state,  # noqa: F811
):
    for number, state in enumerate(["complete", "archived", "failed"]):
        run = SequencingRun.objects.create(
            platform="illumina", run_id=f"260101_A01234_{number:04d}_AH", location="/runs"
        )
        run.move_to(RunState.COMPLETE)
        if state != "complete":
            run.move_to(state, "the instrument says RunStatus=Failed" if state == "failed" else "")
    browser.set_window_size(1400, 2400)
    log_in(browser, live_server, "/admin/overview/")

    row = browser.find_element(By.CSS_SELECTOR, 'tr[data-window="1h"][data-kind="processor"]')
    assert [cell.text for cell in row.find_elements(By.TAG_NAME, "td")] == [
        "1h", "processor", "1", "1", "1", "2", "1",
    ]  # fmt: skip
    failures = browser.find_element(By.ID, "failures").text
    assert LONG_REASON in failures.replace("\n", " ")
    for plot in ("finished-plot", "runtime-plot", "runs-plot"):
        svg = browser.find_element(By.CSS_SELECTOR, f"#{plot} svg")
        size = svg.size
        assert size["width"] > 300 and size["height"] > 80, (plot, size)
    bars = browser.find_elements(By.CSS_SELECTOR, "#runs-plot svg g[id^=patch]")
    assert len(bars) >= 3, "the runs' three states are drawn as bars"

    folder = os.environ.get("REFINERY_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(Path(folder) / "overview.png"))
        failed = every_state["failed"]
        browser.get(f"{live_server.url}/admin/common/processorjob/{failed.pk}/change/")
        browser.save_screenshot(str(Path(folder) / "job.png"))
