"""`manage.py check` (and every command that runs checks): settings the Foreman
needs that do not fit together."""

from __future__ import annotations

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.compatibility)
def run_webhooks_are_signed(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Webhooks without a secret would wait for ever: the refinery sends none unsigned."""
    if settings.REFINERY_RUN_WEBHOOKS and not settings.REFINERY_WEBHOOK_SECRET:
        return [
            checks.Warning(
                "REFINERY_RUN_WEBHOOKS is set but REFINERY_WEBHOOK_SECRET is empty: no run "
                "webhook is sent (they wait in the outbox) until it is set.",
                hint="Set REFINERY_WEBHOOK_SECRET to a long random string and give it to the "
                "receivers, which check the X-Refinery-Signature header with it.",
                id="foreman.W001",
            )
        ]
    return []
