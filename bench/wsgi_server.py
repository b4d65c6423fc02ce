"""The refinery's WSGI application on Django's threaded development server,
with TCP_NODELAY on every connection, for benchmarks that go over HTTP.

    python bench/wsgi_server.py PORT [PROCESSES]

With PROCESSES > 1 the listening socket is shared by that many forked
processes (pre-fork, as gunicorn's workers), each with its threads.

Django's `runserver` writes a response's headers and body in separate small
sends; on a kept-alive connection Nagle's algorithm then holds the body until
the client's delayed ACK (about 40 ms on Linux), which would be measured as
the API's cost. Production servers (gunicorn, uWSGI) set TCP_NODELAY; so does this.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "refinery.settings")


def main() -> None:
    import django

    django.setup()
    from socketserver import ThreadingMixIn

    from django.core.servers.basehttp import (
        WSGIRequestHandler,
        WSGIServer,
        get_internal_wsgi_application,
    )

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True

        def get_request(self):
            connection, address = super().get_request()
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return connection, address

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = Server(("127.0.0.1", int(sys.argv[1])), QuietHandler)
    server.set_app(get_internal_wsgi_application())
    processes = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    for _ in range(processes - 1):
        if os.fork() == 0:  # a child: no database connection was opened before the fork
            break
    server.serve_forever()


if __name__ == "__main__":
    main()
