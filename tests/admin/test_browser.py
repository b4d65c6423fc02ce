"""The admin in a real headless Chromium: log in, open a failed job, follow its retry."""

import shutil

import pytest
from django.contrib.auth.models import User
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = [pytest.mark.browser, pytest.mark.postgres_only]


@pytest.fixture
def browser():
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
    ):
        options.add_argument(flag)  # fmt: skip
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def test_log_in_open_a_failed_job_and_follow_its_retry(live_server, browser, history):
    User.objects.create_superuser("operator", "op@example.org", "a long test password")
    failed, retry = history["failed"], history["retry"]
    wait = WebDriverWait(browser, 20)

    browser.get(f"{live_server.url}/admin/common/processorjob/{failed.pk}/change/")
    wait.until(expected_conditions.presence_of_element_located((By.NAME, "username")))
    assert "/admin/login/" in browser.current_url
    browser.find_element(By.NAME, "username").send_keys("operator")
    browser.find_element(By.NAME, "password").send_keys("a long test password")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()

    wait.until(expected_conditions.url_contains(f"/processorjob/{failed.pk}/change/"))
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "salmon exited with code 1: out of disk" in body
    assert "failed" in body

    browser.find_element(By.PARTIAL_LINK_TEXT, f"attempt 2: job {retry.pk}").click()
    wait.until(expected_conditions.url_contains(f"/processorjob/{retry.pk}/change/"))
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "succeeded" in body
    assert "index.tar.gz" in body  # the retry's result is linked
