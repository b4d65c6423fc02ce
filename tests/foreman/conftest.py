"""Fixtures for the Foreman's tests."""

from __future__ import annotations

import pytest

from tests.foreman.servers import SmtpServer, WebhookServer


@pytest.fixture
def smtp_server():
    server = SmtpServer()
    yield server
    server.close()


@pytest.fixture
def webhook_server():
    server = WebhookServer()
    yield server
    server.close()


@pytest.fixture
def operators(settings, smtp_server, webhook_server):
    """Operators reachable by real SMTP and a webhook on loopback."""
    settings.ADMINS = [("Operator", "ops@example.org")]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp_server.port
    settings.REFINERY_NOTIFY_WEBHOOK = webhook_server.url
    return smtp_server, webhook_server
