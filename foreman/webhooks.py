"""Telling downstream tools that a run's state changed: the Foreman sends the due
webhook deliveries.

`SequencingRun.move_to` queues one `WebhookDelivery` per URL in
`REFINERY_RUN_WEBHOOKS` in the same transaction as the change (an outbox); each
Foreman pass claims the due ones (`foreman.claims`: two Foremen never send the
same row at once), POSTs each outside any transaction, and records the outcome:

- delivered on any 2xx answer (a redirect is not followed: it is a failure);
- otherwise tried again later, after 30 s, 1 min, 2 min, … up to an hour
  between attempts (`REFINERY_WEBHOOK_RETRY_S` sets the first wait), and given
  up after `REFINERY_WEBHOOK_MAX_ATTEMPTS` attempts or once the change is older
  than `REFINERY_WEBHOOK_GIVE_UP_S` (a day): its `last_error` then starts with
  "gave up", the log says so, and the admin lists it as given up;
- in order: a run's changes reach each URL in the order they happened (a
  delivery waits while an earlier one of the same run to the same URL is
  undelivered), and a URL that fails is not called again before its failed
  delivery's next attempt, so a receiver that is down costs a pass one timeout.

Delivery is at least once: a Foreman killed after sending and before recording
leaves the row to the next claim, which sends it again with the same
`X-Refinery-Delivery` id, so receivers can drop duplicates.

The body is signed (`X-Refinery-Signature: sha256=<hex HMAC-SHA256 of the raw
body>`, key `REFINERY_WEBHOOK_SECRET`); nothing is sent while the secret is
unset. The receiver's answer is read for at most `RESPONSE_READ_MAX` bytes and
never stored; the URLs' credentials, paths and queries stay out of logs and
errors (`shown_url`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from urllib.parse import urljoin, urlsplit

import requests
from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from common.models import RunStateChange, WebhookDelivery
from common.secrets import redact
from foreman.claims import claim
from foreman.cli_tables import span

logger = logging.getLogger("refinery.foreman.webhooks")

EVENT = "run.state_changed"
SIGNATURE_HEADER = "X-Refinery-Signature"
DELIVERY_HEADER = "X-Refinery-Delivery"
EVENT_HEADER = "X-Refinery-Event"
GAVE_UP = "gave up"
BACKOFF_CAP_S = 3600
PAGE = 50
# A pass sends at most this many pages; what is left waits for the next pass.
MAX_PAGES_PER_PASS = 20
# The most of a receiver's answer read (then the connection is closed): an
# answer is a status, not content the refinery needs.
RESPONSE_READ_MAX = 4096
# Beyond the send's own timeouts (connect, then read), before another Foreman
# may take a claimed delivery.
CLAIM_MARGIN_S = 30

WITH_URL = re.compile(r"with url: \S+")

STATUSES = ("pending", "failing", "delivered", "given up")
GIVEN_UP = Q(delivered_at__isnull=True, last_error__startswith=GAVE_UP)
OUTSTANDING = Q(delivered_at__isnull=True) & ~Q(last_error__startswith=GAVE_UP)


def status_query(status: str) -> Q:
    """The deliveries in `status`: pending (never tried), failing (tried, to be
    tried again), delivered, or given up."""
    return {
        "pending": OUTSTANDING & Q(attempts=0),
        "failing": OUTSTANDING & Q(attempts__gt=0),
        "delivered": Q(delivered_at__isnull=False),
        "given up": GIVEN_UP,
    }[status]


def status_of(delivery: WebhookDelivery) -> str:
    if delivery.delivered_at:
        return "delivered"
    if delivery.last_error.startswith(GAVE_UP):
        return "given up"
    return "failing" if delivery.attempts else "pending"


# --- what is sent --------------------------------------------------------------------------


def run_links(run) -> dict[str, str]:
    """Where people and tools see the run: its API page and its admin page."""
    base = settings.REFINERY_PUBLIC_URL.rstrip("/") + "/"
    return {
        "api": urljoin(base, reverse("api:sequencingrun-detail", kwargs={"run_id": run.run_id})),
        "admin": urljoin(base, reverse("admin:common_sequencingrun_change", args=[run.pk])),
    }


def payload(change: RunStateChange) -> dict:
    """What a webhook is told about one change of a run's state."""
    run = change.run
    return {
        "event": EVENT,
        "run_id": run.run_id,
        "platform": run.platform,
        "old_state": change.old_state,
        "new_state": change.new_state,
        "reason": redact(change.reason),
        "time": change.at.astimezone(UTC).isoformat(),
        "links": run_links(run),
    }


def body(change: RunStateChange) -> bytes:
    """The raw body: the same bytes on every attempt of the same change."""
    return json.dumps(payload(change), sort_keys=True, separators=(",", ":")).encode()


def signature(raw: bytes, secret: str) -> str:
    """The `X-Refinery-Signature` value of `raw`."""
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def shown_url(url: str) -> str:
    """`url` as logs and errors show it: its scheme, host and port only (its
    user:password, path and query may hold a secret, as chat webhooks' do)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}/…" if host else "(no host)"


class DeliveryError(Exception):
    """A webhook did not take a delivery; the message is safe to store and log."""


def post(delivery: WebhookDelivery, raw: bytes, secret: str) -> None:
    """POST `raw` to the delivery's URL; raises DeliveryError unless it answers 2xx."""
    timeout = settings.REFINERY_WEBHOOK_TIMEOUT_S
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "data-refinery-webhooks/1",
        SIGNATURE_HEADER: signature(raw, secret),
        DELIVERY_HEADER: str(delivery.pk),
        EVENT_HEADER: EVENT,
    }
    try:
        response = requests.post(
            delivery.url,
            data=raw,
            headers=headers,
            timeout=(timeout, timeout),
            allow_redirects=False,
            stream=True,
        )
    except requests.Timeout:
        raise DeliveryError(f"no answer within {timeout} s") from None
    except (requests.RequestException, ValueError) as error:  # refused, reset, a bad URL…
        raise DeliveryError(
            f"{type(error).__name__}: {describe_error(error, delivery.url)}"
        ) from None
    try:
        response.raw.read(RESPONSE_READ_MAX, decode_content=False)
    except Exception:  # the status is what counts; a broken answer body does not
        pass
    finally:
        response.close()
    if 200 <= response.status_code < 300:
        return
    if 300 <= response.status_code < 400:
        raise DeliveryError(f"HTTP {response.status_code} (redirects are not followed)")
    raise DeliveryError(f"HTTP {response.status_code}")


def describe_error(error: Exception, url: str) -> str:
    """The error's text without the URL's secrets: requests' messages repeat the
    host and the path (`…with url: /hook?token=…`)."""
    text = str(error).replace(url, shown_url(url))
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    if target and target != "/":
        text = text.replace(target, "/…")
    text = WITH_URL.sub("with url: /…", text)  # the path as urllib3 wrote it (quoted)
    return redact(text)[:500]


# --- when ----------------------------------------------------------------------------------


def retry_delay(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed attempt: the first wait, doubled
    each time, at most an hour."""
    first = max(settings.REFINERY_WEBHOOK_RETRY_S, 1)
    return timedelta(seconds=min(first * 2 ** max(attempts - 1, 0), max(BACKOFF_CAP_S, first)))


def lease() -> timedelta:
    """How long a claim holds a delivery: its send's connect and read timeouts
    and a margin."""
    return timedelta(seconds=2 * settings.REFINERY_WEBHOOK_TIMEOUT_S + CLAIM_MARGIN_S)


def due(now: datetime) -> QuerySet:
    """Outstanding deliveries whose time has come, oldest first, without those that
    wait for an earlier outstanding delivery of the same run to the same URL."""
    outstanding = WebhookDelivery.objects.filter(OUTSTANDING)
    earlier = outstanding.filter(
        url=OuterRef("url"),
        state_change__run_id=OuterRef("state_change__run_id"),
        pk__lt=OuterRef("pk"),
    )
    return outstanding.filter(next_attempt_at__lte=now).exclude(Exists(earlier)).order_by("pk")


def max_attempts() -> int:
    return max(settings.REFINERY_WEBHOOK_MAX_ATTEMPTS, 1)


def claim_due(now: datetime | None = None) -> list[WebhookDelivery]:
    """Due deliveries claimed for this Foreman (a page, oldest first)."""
    now = now or timezone.now()
    ids = claim(due(now), "next_attempt_at", now + lease(), PAGE)
    return list(
        WebhookDelivery.objects.filter(pk__in=ids)
        .select_related("state_change__run")
        .order_by("pk")
    )


# --- recording what happened ---------------------------------------------------------------


def describe(delivery: WebhookDelivery) -> str:
    change = delivery.state_change
    old = change.old_state or "(new)"
    return (
        f"webhook delivery {delivery.pk} (run {change.run.run_id}: {old} → {change.new_state}) "
        f"to {shown_url(delivery.url)}"
    )


def record_delivered(delivery: WebhookDelivery) -> None:
    now = timezone.now()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        delivered_at=now, attempts=delivery.attempts + 1, last_error="", next_attempt_at=now
    )


def record_failure(delivery: WebhookDelivery, error: str) -> datetime:
    """Record a failed attempt: the next one after the back-off, or give up.
    Returns when the delivery is next tried (for a given-up one: never, shown as
    the time the back-off would have said)."""
    now = timezone.now()
    attempts = delivery.attempts + 1
    next_at = now + retry_delay(attempts)
    age = now - delivery.created_at
    give_up_after = timedelta(seconds=settings.REFINERY_WEBHOOK_GIVE_UP_S)
    if attempts >= max_attempts() or next_at - delivery.created_at > give_up_after:
        error = f"{GAVE_UP} after {attempts} attempt(s) over {span(age)}: {error}"
        logger.error("%s: %s", describe(delivery), error)
    else:
        logger.warning(
            "%s failed (attempt %d): %s; next attempt in %s",
            describe(delivery), attempts, error, span(next_at - now),
        )  # fmt: skip
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        attempts=attempts, last_error=redact(error)[:2000], next_attempt_at=next_at
    )
    return next_at


def hold_back(url: str, until: datetime, now: datetime) -> None:
    """Leave the URL alone until `until`: its other due deliveries wait as long
    (their attempts are not counted; claimed ones are left to their claimers)."""
    WebhookDelivery.objects.filter(OUTSTANDING, url=url, next_attempt_at__lte=now).update(
        next_attempt_at=until
    )


_warned_no_secret = False


def deliver_due() -> Counter:
    """Send the due deliveries, a claimed page at a time (each page may free the
    next change of a run just delivered), recording each outcome as it comes;
    returns how many were delivered and how many failed."""
    global _warned_no_secret
    report: Counter = Counter()
    secret = settings.REFINERY_WEBHOOK_SECRET
    if not secret:
        if not _warned_no_secret and due(timezone.now()).exists():
            logger.warning(
                "run webhooks are waiting: REFINERY_WEBHOOK_SECRET is not set, and the refinery "
                "sends no unsigned webhook. Set it (the receivers check the signature with it)."
            )
            _warned_no_secret = True
        return report
    _warned_no_secret = False
    held: dict[str, datetime] = {}  # URL that failed this pass -> its next attempt
    for _page in range(MAX_PAGES_PER_PASS):
        claimed = claim_due()
        if not claimed:
            break
        for delivery in claimed:
            if delivery.url in held:  # its URL failed (an earlier one of its run, maybe)
                WebhookDelivery.objects.filter(pk=delivery.pk).update(
                    next_attempt_at=held[delivery.url]
                )
                continue
            try:
                post(delivery, body(delivery.state_change), secret)
            except DeliveryError as error:
                held[delivery.url] = record_failure(delivery, str(error))
                hold_back(delivery.url, held[delivery.url], timezone.now())
                report["webhooks failed"] += 1
                continue
            record_delivered(delivery)
            report["webhooks delivered"] += 1
    return report
