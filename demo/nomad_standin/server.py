"""The stand-in: :class:`NomadStandin`'s configuration, lifecycle and HTTP plumbing,
composed of the other modules' parts.

See the package docstring for what it emulates and what it leaves out.
"""

from __future__ import annotations

import contextlib
import copy
import http.server
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import traceback
import urllib.parse
from collections.abc import Callable
from typing import Any

from .acl import Acl
from .answers import Answers, _Raw
from .endpoints import Endpoints
from .faults import FaultInjection
from .go_text import HTTPError
from .inspection import Inspection
from .nodes import Nodes, fake_node
from .restarts import Restarts
from .scheduler import Scheduler
from .state import _Alloc, _Job
from .tasks import TaskRunner
from .templates import TemplateRendering
from .variables import Variables


class NomadStandin(
    FaultInjection,
    Inspection,
    Endpoints,
    Variables,
    Acl,
    Scheduler,
    TaskRunner,
    TemplateRendering,
    Restarts,
    Answers,
    Nodes,
):
    """A Nomad agent's HTTP API on 127.0.0.1, following reference/nomad-api.md.

    Its methods come in parts: :class:`~.faults.FaultInjection`,
    :class:`~.inspection.Inspection`, :class:`~.endpoints.Endpoints`,
    :class:`~.variables.Variables`, :class:`~.acl.Acl`, :class:`~.scheduler.Scheduler`,
    :class:`~.tasks.TaskRunner`, :class:`~.templates.TemplateRendering`,
    :class:`~.restarts.Restarts`, :class:`~.answers.Answers` and :class:`~.nodes.Nodes`;
    this class holds the configuration, the lifecycle and the HTTP plumbing.

    ``host_env`` is the environment of the client agent, which raw_exec tasks inherit
    (by default this process's); ``env_overrides`` is applied last, over everything a
    task's spec gives it.

    ``racy_idempotency`` reproduces hashicorp/nomad#26690 (fixed in 2026): the
    dispatch's idempotency token is checked outside the state lock, so two
    concurrent dispatches with one token may both create a child. To make the race
    happen when a test asks for it, a dispatch that found no child for its token
    waits (at most :data:`~.endpoints.TOKEN_RACE_WINDOW_S`) for a second one with
    the same token to have checked too.
    """

    def __init__(
        self,
        *,
        nodes: list[dict] | None = None,
        run_children: bool = True,
        command_rewriter: Callable[[list[str]], list[str]] | None = None,
        env_overrides: dict[str, str | None] | None = None,
        host_env: dict[str, str] | None = None,
        cwd: str | os.PathLike | None = None,
        strict_token: str | None = None,
        time_scale: float = 1.0,
        workdir: str | os.PathLike | None = None,
        region: str = "global",
        port: int = 0,
        racy_idempotency: bool = False,
    ):
        self.nodes: list[dict] = [copy.deepcopy(n) for n in (nodes or [fake_node()])]
        self.run_children = run_children
        self.command_rewriter = command_rewriter
        self.env_overrides = dict(env_overrides or {})
        self.host_env = dict(host_env) if host_env is not None else None
        self.cwd = os.fspath(cwd) if cwd is not None else None
        self.strict_token = strict_token
        self.time_scale = time_scale
        self.region = region
        self.racy_idempotency = racy_idempotency
        self._token_races: dict[tuple[str, str, str], threading.Barrier] = {}
        self._keep_workdir = workdir is not None
        self._workdir_arg = os.fspath(workdir) if workdir is not None else None
        self.workdir = ""
        self._port = port
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._index = 1
        self._jobs: dict[tuple[str, str], _Job] = {}
        self._evals: dict[str, dict] = {}
        self._allocs: dict[str, _Alloc] = {}
        self._variables: dict[tuple[str, str], dict] = {}
        self._identities: dict[str, dict] = {}
        self._requests: list[dict] = []
        self._fail_next: list[dict] = []
        self._held: set[str] = set()
        self._hold_all = False
        self._timers: list[threading.Timer] = []
        self._threads: list[threading.Thread] = []
        self._alive = False
        self._server: http.server.ThreadingHTTPServer | None = None
        self._server_thread: threading.Thread | None = None
        self._blackhole: socket.socket | None = None
        self.unreachable: bool | str = False
        self.internal_errors: list[str] = []

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> NomadStandin:
        if self._alive:
            return self
        if self._workdir_arg:
            os.makedirs(self._workdir_arg, exist_ok=True)
            self.workdir = self._workdir_arg
        else:
            self.workdir = tempfile.mkdtemp(prefix="nomad-standin-")
        self._alive = True
        self._serve()
        return self

    def stop(self) -> None:
        with self._lock:
            if not self._alive:
                return
            self._alive = False
            for t in self._timers:
                t.cancel()
            procs = [t.proc for a in self._allocs.values() for t in a.tasks.values() if t.proc]
            self._cond.notify_all()
        for p in procs:
            self._killpg(p, signal.SIGKILL)
        self._unserve()
        self._close_blackhole()
        for t in list(self._threads):
            t.join(timeout=5)
        if not self._keep_workdir and self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> NomadStandin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def _serve(self) -> None:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", self._port), _Handler)
        server.daemon_threads = True
        server.standin = self  # type: ignore[attr-defined]
        self._port = server.server_address[1]
        self._server = server
        self._server_thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=f"nomad-standin-{self._port}",
        )
        self._server_thread.start()

    def _unserve(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._server_thread is not None:
            self._server_thread.join(timeout=5)
            self._server_thread = None

    def _close_blackhole(self) -> None:
        if self._blackhole is not None:
            self._blackhole.close()
            self._blackhole = None

    # ----------------------------------------------------------------- HTTP plumbing

    def _handle_http(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        parsed = urllib.parse.urlsplit(raw_path)
        path = urllib.parse.unquote(parsed.path)
        query = {
            k: v[0] for k, v in urllib.parse.parse_qs(parsed.query, keep_blank_values=True).items()
        }
        try:
            parsed_json = json.loads(body) if body else None
        except ValueError:
            parsed_json = None
        record = {
            "method": method,
            "path": path,
            "query": query,
            "json": parsed_json,
            "body": body.decode("utf-8", errors="replace"),
            "headers": dict(headers),
            "status": None,
        }
        with self._lock:
            self._requests.append(record)
            injected = None
            for i, f in enumerate(self._fail_next):
                if (f["method"] is None or f["method"] == method) and (
                    f["path"] is None or f["path"] in path
                ):
                    injected = self._fail_next.pop(i)
                    break
        if injected is not None:
            status, payload = injected["status"], HTTPError(injected["status"], injected["body"])
        else:
            try:
                caller = self._caller(path, headers)
                if path == "/v1/vars" or path.startswith("/v1/var/"):
                    status, payload = self._variables_route(method, path, query, body, caller)
                else:
                    status, payload = self._route(method, path, query, body)
            except HTTPError as e:
                status, payload = e.code, e
            except Exception:
                tb = traceback.format_exc()
                with self._lock:
                    self.internal_errors.append(tb)
                print(tb, file=sys.stderr)
                status, payload = 500, HTTPError(500, "stand-in internal error:\n" + tb)
        with self._lock:
            record["status"] = status
            index = self._index
        extra = {
            "X-Nomad-Index": str(index),
            "X-Nomad-KnownLeader": "true",
            "X-Nomad-LastContact": "0",
        }
        return status, payload, extra


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = "NomadStandin/1.0"
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        standin: NomadStandin = self.server.standin  # type: ignore[attr-defined]
        status, payload, extra = standin._handle_http(
            method, self.path, dict(self.headers.items()), body
        )
        if isinstance(payload, HTTPError):
            data = payload.message.encode()
            content_type = "text/plain; charset=utf-8"
        elif isinstance(payload, _Raw):
            content_type = payload.content_type
            if not isinstance(payload.body, bytes):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                for k, v in extra.items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    for chunk in payload.body:
                        self.wfile.write(chunk)
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass
                return
            data = payload.body
        else:
            data = json.dumps(payload).encode()
            content_type = "application/json"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra.items():
            self.send_header(k, v)
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(data)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")
