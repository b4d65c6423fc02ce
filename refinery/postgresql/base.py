"""Django's PostgreSQL back end, with the health check of a persistent
connection (CONN_HEALTH_CHECKS, on for every PostgreSQL URL) made without a
statement when nothing is wrong.

Django checks a reused connection at the start of each request with
`SELECT 1`. A request of an engine's three (assign, keepalive, completed) runs
two or three statements of its own, so that check was one statement in four
that PostgreSQL parsed and ran, on the cores the API shares with it
(bench/engine_api.py). An idle connection that the server closed or
terminated (a restart, `pg_terminate_backend`, a pooler going away) has
something to read: the server's last message, or the end of the stream. One
that is fine has nothing, so a look at its socket, which costs no round trip,
is the check. When there is something to read (also a harmless asynchronous
message, such as a changed server parameter) Django's `SELECT 1` decides, as
it always did.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base
from psycopg2.extensions import TRANSACTION_STATUS_IDLE


class DatabaseWrapper(base.DatabaseWrapper):
    def close_if_health_check_failed(self) -> None:
        if self.connection is None or not self.health_check_enabled or self.health_check_done:
            return
        if not self.idle_connection_is_sound():
            self.close()
        self.health_check_done = True

    def idle_connection_is_sound(self) -> bool:
        """Whether the open connection can be reused: without a round trip when
        it is idle and the server has sent nothing since its last answer."""
        connection = self.connection
        if connection.closed:
            return False
        if connection.info.transaction_status != TRANSACTION_STATUS_IDLE:
            return self.is_usable()
        try:
            readable, _, _ = select.select([connection.fileno()], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable or self.is_usable()
