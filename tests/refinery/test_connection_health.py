"""The PostgreSQL back end's health check of a persistent connection
(refinery/postgresql/base.py): no statement while the connection is sound; a
connection the server ended is replaced before the request's first statement,
which then runs as if nothing had happened."""

from __future__ import annotations

import select
import time

import pytest
from django.db import connections

from refinery.database_url import parse_database_url
from refinery.postgresql.base import DatabaseWrapper

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def own_connection():
    """A connection of the test's own, as a server thread holds one across
    requests (persistent, health-checked), leaving the test's connection alone."""
    persistent = {**connections["default"].settings_dict, "CONN_MAX_AGE": 600}
    connection = DatabaseWrapper(persistent, "default")
    connection.ensure_connection()
    assert connection.health_check_enabled  # every PostgreSQL URL turns the check on
    yield connection
    connection.close()


def backend_pid(connection) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def new_request(connection) -> None:
    """What Django does at the start of a request (close_old_connections), then
    what the request's first statement does first."""
    connection.close_if_unusable_or_obsolete()
    connection.close_if_health_check_failed()


def count_select_1(connection, monkeypatch) -> list[int]:
    calls = []
    usable = connection.is_usable
    monkeypatch.setattr(connection, "is_usable", lambda: calls.append(1) or usable())
    return calls


def test_every_postgresql_url_uses_the_back_end():
    assert parse_database_url("postgres://u:p@db/refinery")["ENGINE"] == "refinery.postgresql"
    assert connections["default"].__class__.__module__ == "refinery.postgresql.base"


def test_a_sound_connection_is_reused_without_a_statement(own_connection, monkeypatch):
    pid = backend_pid(own_connection)
    checks = count_select_1(own_connection, monkeypatch)
    for _ in range(3):
        new_request(own_connection)
        assert backend_pid(own_connection) == pid
    assert checks == []


def test_a_connection_the_server_ended_is_replaced_before_the_request_uses_it(
    own_connection, monkeypatch
):
    pid = backend_pid(own_connection)
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        assert cursor.fetchone()[0] is True
    # The server's goodbye reaches the socket: wait for it, as time passes
    # between two requests.
    socket = own_connection.connection.fileno()
    deadline = time.monotonic() + 10
    while not select.select([socket], [], [], 0.1)[0]:
        assert time.monotonic() < deadline, "the terminated connection never became readable"
    checks = count_select_1(own_connection, monkeypatch)
    new_request(own_connection)
    assert checks == [1], "something to read on an idle connection is checked with SELECT 1"
    # The request's statement runs, on a new connection: no error reaches it.
    assert backend_pid(own_connection) != pid


def test_a_connection_in_a_transaction_is_checked_with_a_statement(own_connection, monkeypatch):
    own_connection.connection.cursor().execute("BEGIN")
    checks = count_select_1(own_connection, monkeypatch)
    own_connection.health_check_done = False
    own_connection.close_if_health_check_failed()
    assert checks == [1]
