"""The HTTP side: a threaded server and its handler (REST, trees, ``Range``, injected faults)."""

from __future__ import annotations

import base64
import contextlib
import email.utils
import json
import re
import socket
import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs, quote, unquote, urlsplit

from demo.ensembl_server.faults import Rule
from demo.ensembl_server.pages import error_page, listing_page, root_page
from demo.ensembl_server.recording import RecordedRequest

if TYPE_CHECKING:
    from demo.ensembl_server.server import EnsemblServer

_CHUNK = 64 * 1024


class DemoHTTPServer(ThreadingHTTPServer):
    """Serves :class:`_Handler` for ``owner``; can cut open connections short on stop."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: EnsemblServer) -> None:
        self.owner = owner
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.sockets_lock:
                self.open_sockets.discard(request)

    def close_open_connections(self) -> None:
        with self.sockets_lock:
            sockets = list(self.open_sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Truncated(Exception):
    """Raised to abandon a response body mid-way (the connection is then closed)."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Apache/2.4.62 (ensembl-demo)"
    sys_version = ""
    timeout = 30
    server: DemoHTTPServer

    # ----- plumbing

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        try:
            status = int(getattr(code, "value", code))
        except (TypeError, ValueError):
            status = 0
        split = urlsplit(self.path)
        self.server.owner._record(
            RecordedRequest(
                protocol="http",
                method=self.command,
                path=unquote(split.path),
                query=split.query,
                status=status,
                range=self.headers.get("Range") if self.headers else None,
                time=time.time(),
            )
        )

    def do_GET(self) -> None:
        self._dispatch(head=False)

    def do_HEAD(self) -> None:
        self._dispatch(head=True)

    def _dispatch(self, *, head: bool) -> None:
        owner = self.server.owner
        split = urlsplit(self.path)
        path = unquote(split.path)
        try:
            delay = owner._take_rule("delay", path, "http")
            if delay is not None and not delay.params.get("after_bytes"):
                owner._sleep(delay.params["seconds"])
                delay = None
            fail = owner._take_rule("fail", path, "http")
            if fail is not None:
                self._send_failure(
                    path, fail.params["status"], fail.params.get("retry_after"), head
                )
                return
            if path == "/rest" or path.startswith("/rest/"):
                self._rest(path[len("/rest") :], parse_qs(split.query), head)
            elif not path.startswith("/rest") and not self._authorized():
                self._send_bytes(
                    401,
                    error_page(401, "Unauthorized", path).encode(),
                    "text/html;charset=UTF-8",
                    head,
                    [("WWW-Authenticate", 'Basic realm="mirror"')],
                )
            elif path == "/ftp-genomes" or path.startswith("/ftp-genomes/"):
                self._tree(owner._genomes_pub, "/ftp-genomes", path, head, delay)
            elif path == "/ftp" or path.startswith("/ftp/"):
                self._tree(owner._vertebrates_pub, "/ftp", path, head, delay)
            elif path == "/":
                self._send_html(200, root_page(owner), head)
            else:
                self._send_html(404, error_page(404, "Not Found", path), head)
        except (BrokenPipeError, ConnectionResetError, _Truncated):
            self.close_connection = True

    def _authorized(self) -> bool:
        required = self.server.owner._required_credentials
        if required is None:
            return True
        expected = base64.b64encode(":".join(required).encode()).decode()
        return self.headers.get("Authorization", "") == f"Basic {expected}"

    def _send_bytes(
        self,
        status: int,
        body: bytes,
        content_type: str,
        head: bool,
        extra_headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra_headers:
            self.send_header(name, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _send_html(self, status: int, page: str, head: bool) -> None:
        self._send_bytes(status, page.encode("utf-8"), "text/html;charset=UTF-8", head)

    def _send_failure(self, path: str, status: int, retry_after: float | None, head: bool) -> None:
        extra = []
        if retry_after is not None:
            extra.append(("Retry-After", str(int(retry_after) if retry_after >= 1 else 1)))
        reason = self.responses.get(status, ("Error",))[0]
        if path == "/rest" or path.startswith("/rest/"):
            body = json.dumps({"error": f"{status} {reason} (injected by the demo server)"})
            self._send_bytes(status, body.encode(), "application/json", head, extra)
        else:
            self._send_bytes(
                status,
                error_page(status, reason, path).encode(),
                "text/html;charset=UTF-8",
                head,
                extra,
            )

    # ----- REST

    def _rest(self, route: str, query: dict[str, list[str]], head: bool) -> None:
        owner = self.server.owner
        requested = (query.get("content-type") or [None])[-1]
        if requested is not None:
            media = requested.split(";")[0].strip().lower()
            if media not in ("application/json", "json"):
                self._rest_error(415, f"Content-type {requested} is not supported here", head)
                return
        else:
            accept = (self.headers.get("Accept") or "").lower()
            ctype = (self.headers.get("Content-Type") or "").lower()
            if not (
                not accept
                or "application/json" in accept
                or "*/*" in accept
                or "application/*" in accept
                or ctype.startswith("application/json")
            ):
                self._rest_error(415, f"Accept {accept} is not supported here", head)
                return
        route = route.rstrip("/")
        status, payload = owner._rest_response(route, query)
        body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("utf-8")
        headers = [
            ("X-RateLimit-Limit", "55000"),
            ("X-RateLimit-Reset", "3600"),
            ("X-RateLimit-Period", "3600"),
            ("X-RateLimit-Remaining", "54999"),
            ("Access-Control-Allow-Origin", "*"),
        ]
        self._send_bytes(status, body, "application/json", head, headers)

    def _rest_error(self, status: int, message: str, head: bool) -> None:
        body = json.dumps({"error": message}).encode("utf-8")
        self._send_bytes(status, body, "application/json", head)

    # ----- FTP tree over HTTP

    def _tree(self, root: Path, prefix: str, path: str, head: bool, delay: Rule | None) -> None:
        relative = path[len(prefix) :].lstrip("/")
        target = root / relative if relative else root
        try:
            resolved = target.resolve(strict=True)
            resolved.relative_to(self.server.owner._tree_root.resolve())
        except (FileNotFoundError, ValueError, OSError):
            self._send_html(404, error_page(404, "Not Found", path), head)
            return
        if resolved.is_dir():
            if not path.endswith("/"):
                location = quote(path + "/")
                self._send_bytes(
                    301,
                    error_page(301, "Moved Permanently", path).encode(),
                    "text/html;charset=UTF-8",
                    head,
                    [("Location", location)],
                )
                return
            self._send_html(200, listing_page(path, target), head)
            return
        self._send_file(path, resolved, head, delay)

    def _send_file(self, path: str, file_path: Path, head: bool, delay: Rule | None) -> None:
        owner = self.server.owner
        stat = file_path.stat()
        size = stat.st_size
        truncate = owner._take_rule("truncate", path, "http")
        if truncate is not None and truncate.params["mode"] == "gzip":
            size = min(size, truncate.params["nbytes"])
            truncate = None  # served as a consistent (but short) resource
        etag = f'"{stat.st_size:x}-{stat.st_mtime_ns // 1000:x}"'
        last_modified = email.utils.formatdate(stat.st_mtime, usegmt=True)
        start, end, status = 0, size - 1, 200
        range_header = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if range_header and (if_range is None or if_range.strip() in (etag, last_modified)):
            parsed = _parse_range(range_header, size)
            if parsed == "unsatisfiable":
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if parsed is not None:
                start, end = parsed
                status = 206
        length = max(0, end - start + 1)
        content_type = _content_type(file_path.name)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        self.send_header("Last-Modified", last_modified)
        self.send_header("ETag", etag)
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        if truncate is not None:
            self.send_header("Connection", "close")
        self.end_headers()
        if head or length == 0:
            return
        to_send = length if truncate is None else min(length, truncate.params["nbytes"])
        pause_at = delay.params.get("after_bytes") if delay is not None else None
        sent = 0
        with open(file_path, "rb") as source:
            source.seek(start)
            while sent < to_send:
                want = min(_CHUNK, to_send - sent)
                if pause_at is not None and sent < pause_at:
                    want = min(want, pause_at - sent)
                chunk = source.read(want)
                if not chunk:
                    break
                self.wfile.write(chunk)
                sent += len(chunk)
                if pause_at is not None and sent >= pause_at:
                    self.wfile.flush()
                    owner._sleep(delay.params["seconds"])  # type: ignore[union-attr]
                    pause_at = None
        if truncate is not None:
            self.wfile.flush()
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            raise _Truncated


def _parse_range(header: str, size: int) -> tuple[int, int] | Literal["unsatisfiable"] | None:
    """Parse a single ``bytes=`` range; ``None`` means "ignore it, send everything"."""
    match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
    if not match or (not match.group(1) and not match.group(2)):
        return None
    first, last = match.group(1), match.group(2)
    if first:
        start = int(first)
        end = int(last) if last else size - 1
        if start >= size:
            return "unsatisfiable"
        if end < start:
            return None
        return start, min(end, size - 1)
    suffix = int(last)
    if suffix == 0:
        return "unsatisfiable"
    return max(0, size - suffix), size - 1


def _content_type(name: str) -> str:
    if name.endswith(".gz"):
        return "application/x-gzip"
    if name.endswith(".json"):
        return "application/json"
    return "text/plain"
