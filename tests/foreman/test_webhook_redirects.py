"""The operators' webhook is configured, not a source, but a redirect it answers
is not followed: the payload would go wherever the Location says."""

from __future__ import annotations

import pytest

from foreman import notify
from tests.foreman.helpers import smoke_job
from tests.hostile_http import HostileServer

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("status", [302, 307, 308])
def test_a_webhook_redirect_is_not_followed(settings, webhook_server, status):
    hook = HostileServer().start()
    try:
        hook.redirect("/hook", webhook_server.url, status=status)
        settings.ADMINS = []
        settings.REFINERY_NOTIFY_WEBHOOK = f"{hook.url}/hook"
        job = smoke_job(state="running")
        job.mark_failed("boom", no_retry=True)
        notify.record(job)
        assert notify.deliver_pending() == 0
        notification = notify.Notification.objects.get()
        assert notification.delivered_at is None and notification.webhook_sent_at is None
        assert f"the webhook answered HTTP {status}" in notification.last_error
        assert "redirects are not followed" in notification.last_error
        assert webhook_server.posts == [] and hook.hits("/hook") == 1
    finally:
        hook.stop()
