"""A hostile source on loopback: answers what a test tells it to (redirects,
bodies of any size or encoding, odd headers, a custom reason phrase) and
forwards every other request to an upstream server (the demo Ensembl
stand-in), so a whole survey or download runs with one part of it hostile.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


@dataclass
class Answer:
    status: int = 200
    body: bytes | Callable[[], Iterable[bytes]] = b""
    headers: dict[str, str] = field(default_factory=dict)
    reason: str | None = None  # the status line's phrase; None: the standard one
    chunked: bool = False  # no Content-Length: the body is sent chunked
    times: int | None = None  # answer this many requests (None: every one)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    time: float


class HostileServer:
    """`answer(path, …)` overrides a path (exact, without the query); the rest
    goes to `upstream` (a base URL), or gets a 404."""

    def __init__(self, host: str = "127.0.0.1", upstream: str | None = None) -> None:
        self.host = host
        self.upstream = upstream
        self.answers: dict[str, list[Answer]] = {}
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.server.server_address[1]}"

    def answer(self, path: str, status: int = 200, body=b"", **options) -> None:
        with self.lock:
            self.answers.setdefault(path, []).append(Answer(status, body, **options))

    def answer_json(self, path: str, payload: object, status: int = 200, **options) -> None:
        headers = {"Content-Type": "application/json", **options.pop("headers", {})}
        self.answer(path, status, json.dumps(payload).encode(), headers=headers, **options)

    def redirect(self, path: str, location: str, status: int = 302, **options) -> None:
        self.answer(path, status, b"moved", headers={"Location": location}, **options)

    def hits(self, path: str | None = None) -> int:
        with self.lock:
            return sum(1 for s in self.seen if path is None or s.path == path)

    def requests_to(self, path: str) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.path == path]

    def take(self, path: str) -> Answer | None:
        with self.lock:
            queue = self.answers.get(path) or []
            for answer in queue:
                if answer.times is None:
                    return answer
                if answer.times > 0:
                    answer.times -= 1
                    return answer
        return None

    def start(self) -> HostileServer:
        owner = self

        class Handler(_Handler):
            server_owner = owner

        self.server = ThreadingHTTPServer((self.host, 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_owner: HostileServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.serve(head=False)

    def do_HEAD(self) -> None:
        self.serve(head=True)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.serve(head=False)

    def serve(self, head: bool) -> None:
        owner = self.server_owner
        path = urlsplit(self.path).path
        with owner.lock:
            owner.seen.append(Seen(self.command, path, dict(self.headers), time.monotonic()))
        answer = owner.take(path)
        try:
            if answer is not None:
                self.send(answer, head)
            elif owner.upstream:
                self.forward(head)
            else:
                self.send(Answer(404, b"not here"), head)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def send(self, answer: Answer, head: bool) -> None:
        self.send_response(answer.status, answer.reason)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        body = answer.body
        if answer.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif isinstance(body, bytes):
            self.send_header("Content-Length", str(len(body)))
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if head:
            return
        chunks = [body] if isinstance(body, bytes) else body()
        for chunk in chunks:
            if answer.chunked:
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            else:
                self.wfile.write(chunk)
        if answer.chunked:
            self.wfile.write(b"0\r\n\r\n")

    def forward(self, head: bool) -> None:
        upstream = urlsplit(self.server_owner.upstream)
        connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Host"] = upstream.netloc
        connection.request(self.command, self.path, headers=headers)
        response = connection.getresponse()
        body = response.read()
        connection.close()
        self.send_response(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP | {"content-length"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)
