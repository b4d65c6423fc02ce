"""Fault injection: failing, truncated and delayed responses, and corrupted ``CHECKSUMS``."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from common.bsd_sum import format_sum_line


@dataclass
class Rule:
    """One injected fault: which requests it applies to, and how many more times."""

    kind: str  # "fail" | "truncate" | "delay"
    suffix: str
    remaining: int | None
    protocols: tuple[str, ...]
    params: dict[str, Any] = field(default_factory=dict)

    def matches(self, path: str, protocol: str) -> bool:
        return protocol in self.protocols and path.endswith(self.suffix)


class FaultInjection:
    """The fault-injection methods of :class:`~demo.ensembl_server.EnsemblServer`.

    A part of ``EnsemblServer``, which provides the attributes annotated here.
    """

    _lock: threading.Lock
    _rules: list[Rule]
    _checksum_originals: dict[Path, bytes]
    _overridden: dict[Path, bytes | None]
    _required_credentials: tuple[str, str] | None
    _stop_event: threading.Event
    _tree_root: Path
    file_mtime: float

    def fail_path(
        self,
        path_suffix: str,
        status: int = 404,
        times: int | None = None,
        *,
        retry_after: float | None = None,
        protocols: Sequence[str] = ("http", "ftp"),
    ) -> None:
        """Answer requests whose path ends with ``path_suffix`` with ``status``.

        ``times``: only the next ``times`` matching requests (``None``: until
        :meth:`clear_faults`). ``retry_after`` adds a ``Retry-After`` header (as Ensembl's
        REST server does with 429). REST paths get ``{"error": ...}`` bodies. Over FTP the
        request gets reply 550 (421 for statuses 429 and 503).
        """
        self._add_rule(
            Rule(
                "fail",
                path_suffix,
                times,
                tuple(protocols),
                {"status": status, "retry_after": retry_after},
            )
        )

    def truncate(
        self,
        path_suffix: str,
        nbytes: int,
        *,
        mode: Literal["close", "gzip"] = "close",
        times: int | None = None,
    ) -> None:
        """Serve only the first ``nbytes`` of matching files (HTTP only).

        ``mode="close"``: the headers announce the full ``Content-Length`` but the connection
        is closed after ``nbytes`` body bytes (a client sees a short read). ``mode="gzip"``:
        the file is served as if it were ``nbytes`` long, with a consistent
        ``Content-Length`` (a complete-looking download of a truncated gzip, which only a
        gzip or checksum check can catch).
        """
        if mode not in ("close", "gzip"):
            raise ValueError("mode must be 'close' or 'gzip'")
        self._add_rule(
            Rule("truncate", path_suffix, times, ("http",), {"nbytes": nbytes, "mode": mode})
        )

    def delay(
        self,
        path_suffix: str,
        seconds: float,
        times: int | None = None,
        *,
        after_bytes: int = 0,
        protocols: Sequence[str] = ("http", "ftp"),
    ) -> None:
        """Wait ``seconds`` before answering matching requests (to trip client timeouts).

        With ``after_bytes`` > 0 (HTTP files only) the headers and the first ``after_bytes``
        bytes go out at once and the body then stalls. :meth:`stop` cuts every wait short.
        Over FTP the wait happens before the command is answered (and holds up that FTP
        server's other connections meanwhile).
        """
        self._add_rule(
            Rule(
                "delay",
                path_suffix,
                times,
                tuple(protocols),
                {"seconds": seconds, "after_bytes": after_bytes},
            )
        )

    def corrupt_checksum(self, path_suffix: str) -> list[Path]:
        """Make the ``CHECKSUMS`` lines of matching files list a wrong sum (over HTTP and FTP).

        Returns the ``CHECKSUMS`` files changed; raises ``FileNotFoundError`` if no served
        file matches. :meth:`clear_faults` restores them.
        """
        changed = []
        for checksums in sorted(self._tree_root.rglob("CHECKSUMS")):
            folder = checksums.parent
            lines = checksums.read_text(encoding="ascii").splitlines(keepends=True)
            new_lines = []
            hit = False
            for line in lines:
                fields = line.split(None, 2)
                name = fields[2].strip() if len(fields) == 3 else ""
                relative = (folder / name).relative_to(self._tree_root).as_posix()
                if name and relative.endswith(path_suffix.lstrip("/")):
                    wrong = (int(fields[0]) + 1) % 65536
                    new_lines.append(format_sum_line(wrong, int(fields[1]), name))
                    hit = True
                else:
                    new_lines.append(line)
            if hit:
                with self._lock:
                    self._checksum_originals.setdefault(checksums, checksums.read_bytes())
                _write_keep_mtime(checksums, "".join(new_lines).encode("ascii"), self.file_mtime)
                changed.append(checksums)
        if not changed:
            raise FileNotFoundError(f"no served file ends with {path_suffix!r}")
        return changed

    def override_file(self, url: str, data: bytes | Path) -> Path:
        """Serve ``data`` (bytes, or a file's content) at ``url``, a file URL of this server:
        a hostile ``CHECKSUMS``, a file bigger than announced, a file at a path nothing lists.
        Replaces what was there or adds a file; :meth:`clear_faults` restores the tree."""
        path = self.local_path(url)
        if not path.resolve().is_relative_to(self._tree_root.resolve()):
            raise ValueError(f"{url} is outside the served tree")
        with self._lock:
            if path not in self._overridden:
                self._overridden[path] = path.read_bytes() if path.is_file() else None
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, Path):
            partial = path.with_name(f".{path.name}.partial")
            partial.unlink(missing_ok=True)
            try:
                os.link(data, partial)  # a huge file need not be copied
            except OSError:
                shutil.copyfile(data, partial)
            os.utime(partial, (self.file_mtime, self.file_mtime))
            os.replace(partial, path)
        else:
            _write_keep_mtime(path, data, self.file_mtime)
        return path

    def require_credentials(self, user: str, password: str) -> None:
        """Answer the FTP trees over HTTP only to requests with this Basic authentication
        (401 otherwise), as a private mirror would. The REST API stays open."""
        self._required_credentials = (user, password)

    def clear_faults(self) -> None:
        """Remove every injected fault, restore corrupted ``CHECKSUMS`` and overridden files,
        and drop required credentials."""
        with self._lock:
            self._rules.clear()
            originals = dict(self._checksum_originals)
            self._checksum_originals.clear()
            overridden = dict(self._overridden)
            self._overridden.clear()
            self._required_credentials = None
        for path, data in originals.items():
            _write_keep_mtime(path, data, self.file_mtime)
        for path, data in overridden.items():
            if data is None:
                path.unlink(missing_ok=True)
            else:
                _write_keep_mtime(path, data, self.file_mtime)

    def _add_rule(self, rule: Rule) -> None:
        if rule.remaining is not None and rule.remaining < 1:
            raise ValueError("times must be at least 1 (or None for 'always')")
        with self._lock:
            self._rules.append(rule)

    def _take_rule(self, kind: str, path: str, protocol: str) -> Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.kind == kind and rule.matches(path, protocol):
                    if rule.remaining is not None:
                        rule.remaining -= 1
                        if rule.remaining == 0:
                            self._rules.remove(rule)
                    return rule
        return None

    def _sleep(self, seconds: float) -> None:
        self._stop_event.wait(seconds)


def _write_keep_mtime(path: Path, data: bytes, mtime: float) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    os.utime(partial, (mtime, mtime))
    os.replace(partial, path)
