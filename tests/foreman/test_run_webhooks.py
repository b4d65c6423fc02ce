"""Webhooks for changes of the runs' states: signed JSON POSTs to loopback
receivers, retried with back-off from the outbox, in order, once per change
(at least once across a crash), sent by the Foreman's pass."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import signal
import socket
import threading
from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from common.models import SequencingRun, WebhookDelivery
from foreman import webhooks
from foreman.passes import Foreman
from tests.foreman.helpers import wait_for
from tests.foreman.servers import ENDLESS_MAX, RunWebhookReceiver
from tests.foreman.test_passes import FakeDispatcher

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "whsec-test-0123456789abcdef"


def verify(body: bytes, header: str, secret: str) -> bool:
    """The README's receiver-side check, word for word."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


@pytest.fixture
def receiver(settings):
    server = RunWebhookReceiver()
    settings.REFINERY_RUN_WEBHOOKS = [server.url]
    settings.REFINERY_WEBHOOK_SECRET = SECRET
    settings.REFINERY_PUBLIC_URL = "https://refinery.example.org"
    settings.REFINERY_WEBHOOK_TIMEOUT_S = 2
    yield server
    server.close()


def new_run(run_id: str = "230101_A01234_0042_AHXXXXXXX") -> SequencingRun:
    return SequencingRun.objects.create(platform="illumina", run_id=run_id, location="/runs/x")


def time_passes() -> None:
    """Every outstanding delivery's next attempt is due (as after the back-off)."""
    WebhookDelivery.objects.filter(delivered_at__isnull=True).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def test_a_change_is_posted_signed_with_the_run_and_links(receiver):
    run = new_run()
    run.move_to("complete", "CopyComplete.txt older than the grace period")
    [delivery] = WebhookDelivery.objects.all()
    assert webhooks.deliver_due() == {"webhooks delivered": 1}
    [post] = receiver.posts
    assert verify(post.body, post.headers["X-Refinery-Signature"], SECRET)
    assert not verify(post.body, post.headers["X-Refinery-Signature"], SECRET + "x")
    assert post.headers["X-Refinery-Delivery"] == str(delivery.pk)
    assert post.headers["Content-Type"] == "application/json"
    body = post.json
    change = run.history.get()
    assert {k: body[k] for k in ("run_id", "platform", "old_state", "new_state", "reason")} == {
        "run_id": run.run_id,
        "platform": "illumina",
        "old_state": "sequencing",
        "new_state": "complete",
        "reason": "CopyComplete.txt older than the grace period",
    }
    moment = datetime.fromisoformat(body["time"])
    assert moment.tzinfo is not None and moment == change.at
    assert body["links"] == {
        "api": f"https://refinery.example.org/api/runs/{run.run_id}/",
        "admin": f"https://refinery.example.org/admin/common/sequencingrun/{run.pk}/change/",
    }
    delivery.refresh_from_db()
    assert delivery.delivered_at is not None and delivery.attempts == 1
    assert webhooks.deliver_due() == {}  # sent once
    assert len(receiver.posts) == 1


def test_each_webhook_gets_each_change(receiver, settings):
    other = RunWebhookReceiver()
    try:
        settings.REFINERY_RUN_WEBHOOKS = [receiver.url, other.url]
        run = new_run()
        run.move_to("complete", "RTAComplete.txt")
        run.move_to("failed", "the instrument says so")
        webhooks.deliver_due()
        for server in (receiver, other):
            assert [p.json["new_state"] for p in server.posts] == ["complete", "failed"]
    finally:
        other.close()


def test_a_webhook_down_for_a_while_delays_nothing_and_loses_nothing(receiver, caplog):
    """Down (503) for two rounds: one attempt per round for the URL, the others wait
    their turn; once it is back every change arrives, each run's in order."""
    receiver.statuses = [503, 503]
    run, other = new_run(), new_run("230102_A01234_0043_BHYYYYYYY")
    run.move_to("complete", "")
    run.move_to("archiving", "")
    other.move_to("complete", "")
    run.move_to("archived", "")
    caplog.set_level(logging.WARNING, logger="refinery.foreman.webhooks")

    started = timezone.now()
    assert webhooks.deliver_due() == {"webhooks failed": 1}
    first = WebhookDelivery.objects.order_by("pk").first()
    assert (first.attempts, first.last_error) == (1, "HTTP 503")
    wait = first.next_attempt_at - started
    assert timedelta(seconds=29) < wait < timedelta(seconds=32)  # "later": after 30 s
    assert "failed (attempt 1): HTTP 503; next attempt in" in caplog.text
    # the URL is left alone until then: the other deliveries wait, uncounted
    assert set(WebhookDelivery.objects.exclude(pk=first.pk).values_list("attempts", flat=True)) == {
        0
    }
    assert webhooks.deliver_due() == {}

    time_passes()
    assert webhooks.deliver_due() == {"webhooks failed": 1}
    first.refresh_from_db()
    assert first.attempts == 2
    assert timedelta(seconds=59) < first.next_attempt_at - timezone.now() < timedelta(seconds=61)

    time_passes()  # ... and it is back
    assert webhooks.deliver_due() == {"webhooks delivered": 4}
    assert not WebhookDelivery.objects.filter(delivered_at__isnull=True).exists()
    taken = [(p.json["run_id"], p.json["new_state"]) for p in receiver.delivered()]
    assert [state for run_id, state in taken if run_id == run.run_id] == [
        "complete",
        "archiving",
        "archived",
    ]
    assert [state for run_id, state in taken if run_id == other.run_id] == ["complete"]
    ids = [p.headers["X-Refinery-Delivery"] for p in receiver.delivered()]
    assert len(ids) == len(set(ids)) == 4


def test_a_later_change_waits_for_an_earlier_one_of_the_same_run(receiver):
    run = new_run()
    run.move_to("complete", "")
    run.move_to("archiving", "")
    first, _second = WebhookDelivery.objects.order_by("pk")
    WebhookDelivery.objects.filter(pk=first.pk).update(
        attempts=1, next_attempt_at=timezone.now() + timedelta(minutes=5)
    )
    assert webhooks.deliver_due() == {}  # the second is due, but the first is not yet
    assert receiver.posts == []


def test_back_off_doubles_up_to_an_hour(settings):
    settings.REFINERY_WEBHOOK_RETRY_S = 30
    waits = [webhooks.retry_delay(n).total_seconds() for n in range(1, 11)]
    assert waits == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]


def test_it_gives_up_after_the_last_attempt_and_says_so(receiver, settings, caplog):
    settings.REFINERY_WEBHOOK_MAX_ATTEMPTS = 3
    receiver.statuses = [500]
    run = new_run()
    run.move_to("complete", "")
    run.move_to("archiving", "")
    first = WebhookDelivery.objects.order_by("pk").first()
    WebhookDelivery.objects.filter(pk=first.pk).update(attempts=2)
    caplog.set_level(logging.WARNING, logger="refinery.foreman.webhooks")
    webhooks.deliver_due()
    first.refresh_from_db()
    assert first.last_error.startswith("gave up after 3 attempt(s) over ")
    assert first.last_error.endswith(": HTTP 500") and webhooks.status_of(first) == "given up"
    assert any(r.levelname == "ERROR" and "gave up" in r.getMessage() for r in caplog.records)
    time_passes()
    assert webhooks.deliver_due() == {"webhooks delivered": 1}  # the later one goes on
    assert [p.json["new_state"] for p in receiver.delivered()] == ["archiving"]
    first.refresh_from_db()
    assert first.delivered_at is None and first.attempts == 3  # not tried again


def test_it_gives_up_on_a_change_older_than_a_day(receiver, settings):
    receiver.statuses = [503]
    new_run().move_to("complete", "")
    WebhookDelivery.objects.update(
        created_at=timezone.now() - timedelta(hours=23, minutes=59, seconds=45)
    )
    webhooks.deliver_due()
    delivery = WebhookDelivery.objects.get()
    assert delivery.last_error.startswith("gave up after 1 attempt(s) over 23 h 59 min")


def test_two_senders_racing_send_each_change_once(receiver, monkeypatch):
    """Two Foremen (threads, each with its own database connection) claim small
    pages at once from the same outbox."""
    monkeypatch.setattr(webhooks, "PAGE", 3)
    receiver.delay_s = 0.01
    for n in range(12):
        run = new_run(f"230101_A01234_{n:04d}_AHXXXXXXX")
        run.move_to("complete", "")
        run.move_to("failed", "the instrument says so")
    start = threading.Barrier(2)
    sent: dict[str, int] = {}
    errors: list[BaseException] = []

    def sender(name: str) -> None:
        try:
            start.wait(10)
            while report := webhooks.deliver_due():
                sent[name] = sent.get(name, 0) + report["webhooks delivered"]
        except BaseException as error:  # reported by the test
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=sender, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    ids = [p.headers["X-Refinery-Delivery"] for p in receiver.posts]
    assert len(ids) == 24 and len(set(ids)) == 24  # each once, none lost
    assert sum(sent.values()) == 24
    assert not WebhookDelivery.objects.filter(delivered_at__isnull=True).exists()
    for n in range(12):
        states = [p.json["new_state"] for p in receiver.posts
                  if p.json["run_id"] == f"230101_A01234_{n:04d}_AHXXXXXXX"]  # fmt: skip
        assert states == ["complete", "failed"]


def test_a_foreman_killed_between_sending_and_recording_sends_it_again(receiver, start_manage):
    """SIGKILL while the receiver holds the POST (sent, not recorded): after the
    claim's lease the next pass sends the same delivery again, with the same id
    and body. At least once: a duplicate the receiver can drop, never a loss."""
    run = new_run()
    run.move_to("complete", "")
    foreman: dict = {}

    def kill_the_sender(post) -> None:
        os.kill(foreman["process"].pid, signal.SIGKILL)
        foreman["process"].wait(10)

    receiver.on_post = kill_the_sender
    env = {
        "REFINERY_RUN_WEBHOOKS": receiver.url,
        "REFINERY_WEBHOOK_SECRET": SECRET,
        "REFINERY_WEBHOOK_TIMEOUT_S": "5",
        "REFINERY_PUBLIC_URL": "https://refinery.example.org",
    }
    foreman["process"] = start_manage("foreman", "--once", env=env)
    foreman["process"].wait(60)
    assert foreman["process"].returncode == -signal.SIGKILL
    receiver.on_post = None
    [delivery] = WebhookDelivery.objects.all()
    assert delivery.delivered_at is None and delivery.attempts == 0
    assert delivery.next_attempt_at > timezone.now()  # still claimed by the dead Foreman
    assert webhooks.deliver_due() == {}

    time_passes()  # the lease ran out
    assert webhooks.deliver_due() == {"webhooks delivered": 1}
    first, second = receiver.posts
    assert first.headers["X-Refinery-Delivery"] == second.headers["X-Refinery-Delivery"]
    assert first.body == second.body
    delivery.refresh_from_db()
    assert delivery.delivered_at is not None and delivery.attempts == 1


def test_the_receivers_answer_is_read_only_a_little_and_never_stored(receiver):
    receiver.statuses = ["endless"]
    new_run().move_to("complete", "")
    assert webhooks.deliver_due() == {"webhooks delivered": 1}
    wait_for(lambda: receiver.answered_bytes > 0, 5, "the answer to start")
    assert receiver.answered_bytes < ENDLESS_MAX // 4  # it stopped reading, and hung up

    receiver.statuses = [500]
    receiver.answer_body = b"Traceback: password=hunter2hunter2"
    new_run("230102_A01234_0043_BHYYYYYYY").move_to("complete", "")
    webhooks.deliver_due()
    failed = WebhookDelivery.objects.get(delivered_at__isnull=True)
    assert failed.last_error == "HTTP 500"


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (302, "HTTP 302 (redirects are not followed)"),
        (404, "HTTP 404"),
        ("hang", "no answer within 1 s"),
    ],
)
def test_what_a_failure_records(receiver, settings, status, error):
    settings.REFINERY_WEBHOOK_TIMEOUT_S = 1
    receiver.statuses = [status]
    new_run().move_to("complete", "")
    assert webhooks.deliver_due() == {"webhooks failed": 1}
    assert WebhookDelivery.objects.get().last_error == error
    assert len(receiver.posts) == 1  # a redirect is not followed


def test_credentials_and_tokens_in_a_url_stay_out_of_errors_and_logs(receiver, settings, caplog):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://hookuser:hookpass99@127.0.0.1:{port}/services/T0/B0/pathsecret42?token=tok77777"
    settings.REFINERY_RUN_WEBHOOKS = [url]
    caplog.set_level(logging.DEBUG)
    new_run().move_to("complete", "")
    assert webhooks.deliver_due() == {"webhooks failed": 1}
    delivery = WebhookDelivery.objects.get()
    assert delivery.last_error.startswith("ConnectionError: ")
    for secret in ("hookpass99", "pathsecret42", "tok77777", SECRET):
        assert secret not in delivery.last_error
        assert secret not in caplog.text
    assert f"127.0.0.1:{port}/…" in caplog.text  # says which webhook, without its secrets


def test_nothing_unsigned_is_sent(receiver, settings, caplog):
    settings.REFINERY_WEBHOOK_SECRET = ""
    new_run().move_to("complete", "")
    caplog.set_level(logging.WARNING, logger="refinery.foreman.webhooks")
    assert webhooks.deliver_due() == {}
    assert receiver.posts == [] and "REFINERY_WEBHOOK_SECRET is not set" in caplog.text
    delivery = WebhookDelivery.objects.get()
    assert delivery.attempts == 0 and webhooks.status_of(delivery) == "pending"  # it waits
    settings.REFINERY_WEBHOOK_SECRET = SECRET
    assert webhooks.deliver_due() == {"webhooks delivered": 1}


def test_the_foremans_pass_delivers_them(receiver):
    new_run().move_to("complete", "")
    report = Foreman(dispatcher=FakeDispatcher(), outbox_grace_s=0).run_pass()
    assert report["webhooks delivered"] == 1 and len(receiver.delivered()) == 1


def test_manage_py_check_warns_of_webhooks_without_a_secret(settings):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    settings.REFINERY_RUN_WEBHOOKS = ["https://hooks.example.org/x"]
    settings.REFINERY_WEBHOOK_SECRET = ""
    with pytest.raises(SystemCheckError, match="REFINERY_WEBHOOK_SECRET is empty"):
        call_command("check", "--fail-level", "WARNING")
    settings.REFINERY_WEBHOOK_SECRET = SECRET
    call_command("check", "--fail-level", "WARNING")
