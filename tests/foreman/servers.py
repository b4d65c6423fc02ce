"""Loopback servers that catch what the Foreman sends: a tiny SMTP server (enough
of RFC 5321 for smtplib), an HTTP server for the operators' webhook, and one for
the webhooks downstream tools give for changes of the runs' states."""

from __future__ import annotations

import json
import socketserver
import threading
import time
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _SmtpHandler(socketserver.StreamRequestHandler):
    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self.reply("220 localhost test SMTP")
        sender, recipients = "", []
        while line := self.rfile.readline():
            command = line.decode("ascii", "replace").strip()
            verb = command.split(" ", 1)[0].upper()
            if verb == "EHLO":
                self.reply("250-localhost")
                self.reply("250 8BITMIME")
            elif verb == "HELO":
                self.reply("250 localhost")
            elif verb == "MAIL":
                sender, recipients = command.split(":", 1)[1].strip(" <>"), []
                self.reply("250 OK")
            elif verb == "RCPT":
                recipients.append(command.split(":", 1)[1].strip(" <>"))
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 end with .")
                data = bytearray()
                while (chunk := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
                    data += chunk[1:] if chunk.startswith(b"..") else chunk
                self.server.messages.append((sender, recipients, message_from_bytes(bytes(data))))
                self.reply("250 OK queued")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:  # RSET, NOOP, ...
                self.reply("250 OK")


class SmtpServer(socketserver.ThreadingTCPServer):
    """Collects (sender, recipients, message) in `messages`."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SmtpHandler)
        self.messages: list[tuple[str, list[str], Message]] = []
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return self.server_address[1]

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class _WebhookHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.posts.append(json.loads(body))
        status = self.server.statuses.pop(0) if self.server.statuses else 204
        if status == "hang":  # never answer: the client's timeout must end it
            self.server.hanging.set()
            self.server.released.wait(30)
            return
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


class WebhookServer(ThreadingHTTPServer):
    """Collects the JSON bodies POSTed to it in `posts`; answers with the codes in
    `statuses` first (to test failures; "hang" never answers, until `released`),
    then 204."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _WebhookHandler)
        self.posts: list[dict] = []
        self.statuses: list[int | str] = []
        self.hanging, self.released = threading.Event(), threading.Event()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"

    def close(self) -> None:
        self.released.set()
        self.shutdown()
        self.server_close()


class ReceivedPost:
    """One POST a receiver got: its headers, its raw body, and the status it was answered."""

    def __init__(self, headers, body: bytes, status) -> None:
        self.headers, self.body, self.status = headers, body, status

    @property
    def json(self) -> dict:
        return json.loads(self.body)


# The most an "endless" answer writes: far more than any sane client reads.
ENDLESS_MAX = 256 * 1024 * 1024


class _RunWebhookHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        server = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with server.lock:
            status = server.statuses.pop(0) if server.statuses else 204
            post = ReceivedPost(dict(self.headers), body, status)
            server.posts.append(post)
        if server.on_post:
            server.on_post(post)
        if server.delay_s:
            time.sleep(server.delay_s)
        if status == "hang":  # never answer: the client's timeout must end it
            server.released.wait(30)
            return
        if status == "endless":  # 200 and a body that does not end
            self.send_response(200)
            self.send_header("Content-Length", str(ENDLESS_MAX))
            self.end_headers()
            chunk = b"x" * 65536
            try:
                while server.answered_bytes < ENDLESS_MAX:
                    self.wfile.write(chunk)
                    server.answered_bytes += len(chunk)
            except OSError:  # the client closed the connection
                pass
            self.close_connection = True
            return
        answer = server.answer_body
        try:
            self.send_response(status)
            self.send_header("Content-Length", str(len(answer)))
            if 300 <= status < 400:
                self.send_header("Location", "http://127.0.0.1:9/elsewhere")
            self.end_headers()
            self.wfile.write(answer)
        except OSError:  # the client is gone (killed, or hung up)
            self.close_connection = True

    def log_message(self, *args) -> None:
        pass


class RunWebhookReceiver(ThreadingHTTPServer):
    """A downstream tool's webhook: keeps each POST (`posts`, with headers and the
    raw body) and answers with the statuses in `statuses` first (an HTTP code,
    "hang" or "endless"), then 204. `on_post(post)` runs before it answers,
    `delay_s` delays each answer."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _RunWebhookHandler)
        self.posts: list[ReceivedPost] = []
        self.statuses: list[int | str] = []
        self.on_post = None
        self.delay_s = 0.0
        self.answer_body = b""
        self.answered_bytes = 0
        self.lock = threading.Lock()
        self.released = threading.Event()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/runs-hook"

    def delivered(self) -> list[ReceivedPost]:
        """The posts it took (answered 2xx)."""
        return [p for p in self.posts if isinstance(p.status, int) and 200 <= p.status < 300]

    def close(self) -> None:
        self.released.set()
        self.shutdown()
        self.server_close()
