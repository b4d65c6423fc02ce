"""Request recording: :class:`RecordedRequest` and the server's log of what it saw."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server saw.

    ``protocol`` is ``"http"`` or ``"ftp"``; ``method`` the HTTP method or FTP command
    (``RETR``, ``SIZE``, ``LIST``...); ``path`` the URL path (``/ftp/release-114/...``,
    ``/rest/info/software``) or FTP path (``/pub/release-114/...``); ``status`` the HTTP
    status or FTP reply code.
    """

    protocol: str
    method: str
    path: str
    query: str
    status: int
    range: str | None
    time: float


class RequestLog:
    """:class:`~demo.ensembl_server.EnsemblServer`'s record of every request.

    A part of ``EnsemblServer``, which provides the attributes annotated here.
    """

    _lock: threading.Lock
    _requests: list[RecordedRequest]

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the requests seen so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def request_count(
        self,
        path_suffix: str,
        *,
        method: str | None = "GET",
        protocol: str | None = None,
        statuses: Iterable[int] | None = None,
    ) -> int:
        """How many recorded requests have a path ending with ``path_suffix``.

        ``method`` ``None`` counts every method (FTP downloads are ``RETR``); ``statuses``
        limits the count to those statuses (e.g. ``(200, 206)``).
        """
        wanted = set(statuses) if statuses is not None else None
        return sum(
            1
            for r in self.requests
            if r.path.endswith(path_suffix)
            and (method is None or r.method == method)
            and (protocol is None or r.protocol == protocol)
            and (wanted is None or r.status in wanted)
        )

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _record_ftp(self, command: str, path: str, code: int) -> None:
        self._record(RecordedRequest("ftp", command, path, "", code, None, time.time()))
