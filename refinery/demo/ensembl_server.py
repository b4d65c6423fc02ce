"""An offline, deterministic stand-in for Ensembl: its REST API and its FTP tree, on loopback.

:class:`EnsemblServer` serves, from one threaded HTTP server on ``127.0.0.1``:

``/rest/...``
    the parts of ``https://rest.ensembl.org`` that a transcriptome-index surveyor uses, in
    Ensembl's response shapes: ``info/genomes/division/<division>``, ``info/genomes/<name>``,
    ``info/species``, ``info/eg_version``, ``info/software``, ``info/data``,
    ``info/divisions``, ``info/ping``. JSON only; the ``content-type`` query parameter and the
    ``Accept`` / ``Content-Type`` request headers are honoured. Errors are ``{"error": "..."}``
    with status 400, as Ensembl's.
``/ftp/...``
    what ``https://ftp.ensembl.org/pub/`` holds for the served vertebrate genomes:
    ``release-<E>/fasta/<species>/dna/<Species>.<Assembly>.dna.toplevel.fa.gz`` (and
    ``...dna.primary_assembly.fa.gz`` where the genome has one),
    ``release-<E>/gtf/<species>/<Species>.<Assembly>.<E>.gtf.gz`` (and ``.chr.gtf.gz``), a
    ``README`` and a ``CHECKSUMS`` file (BSD ``sum``) in every leaf folder,
    ``release-<E>/species_EnsemblVertebrates.txt``, and the ``current_fasta`` /
    ``current_gtf`` links.
``/ftp-genomes/...``
    what ``https://ftp.ensemblgenomes.ebi.ac.uk/pub/`` holds for the other divisions:
    ``<short>/release-<G>/fasta/[<collection>/]<species>/dna/...``,
    ``<short>/release-<G>/gtf/[<collection>/]<species>/<Species>.<Assembly>.<G>.gtf.gz``,
    ``<short>/release-<G>/species_<Division>.txt`` (whose ``core_db`` column names the
    collection, e.g. ``bacteria_0_collection_core_61_114_1``), and the ``<short>/current`` and
    ``release-<G>/<short>`` links; ``<short>`` is plants, fungi, metazoa, protists or bacteria.

Folders are listed as Apache-style HTML index pages; files honour ``Range`` requests (206)
and ``If-Range``. With ``ftp=True`` the same two trees are also served over real FTP
(pyftpdlib, anonymous, read-only) on two more loopback ports, as ``ftp://.../pub/...``.

Every request is recorded (:attr:`EnsemblServer.requests`), and faults can be injected for
tests: :meth:`~EnsemblServer.fail_path`, :meth:`~EnsemblServer.truncate`,
:meth:`~EnsemblServer.corrupt_checksum`, :meth:`~EnsemblServer.delay`.

Run ``python -m refinery.demo.ensembl_server --genes 200 --seed 1`` to serve a generated demo
organism and print the URLs.
"""

from __future__ import annotations

import argparse
import contextlib
import email.utils
import hashlib
import html
import json
import logging
import os
import re
import shutil
import signal
import socket
import tempfile
import threading
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, quote, unquote, urlsplit

from common.bsd_sum import bsd_sum_path, format_sum_line
from refinery.demo.organism import DemoOrganism, gzip_file

__all__ = [
    "DIVISIONS",
    "SHORT_DIVISIONS",
    "VERTEBRATES",
    "EnsemblServer",
    "RecordedRequest",
    "ServedGenome",
    "main",
]

VERTEBRATES = "EnsemblVertebrates"
#: Division name -> the folder it has on the Ensembl Genomes FTP site.
SHORT_DIVISIONS = {
    "EnsemblPlants": "plants",
    "EnsemblFungi": "fungi",
    "EnsemblMetazoa": "metazoa",
    "EnsemblProtists": "protists",
    "EnsemblBacteria": "bacteria",
}
DIVISIONS = (VERTEBRATES, *SHORT_DIVISIONS)

#: The columns of ``species_<Division>.txt``, as Ensembl's TextMetaDataDumper writes them.
SPECIES_TXT_COLUMNS = (
    "name",
    "species",
    "division",
    "taxonomy_id",
    "assembly",
    "assembly_accession",
    "genebuild",
    "variation",
    "microarray",
    "pan_compara",
    "peptide_compara",
    "genome_alignments",
    "other_alignments",
    "core_db",
    "species_id",
)

#: All files of the trees carry this modification time (the demo's fixed "release date").
DEFAULT_FILE_MTIME = 1_746_532_800  # 2025-05-06 12:00:00 UTC

_CHUNK = 64 * 1024


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class ServedGenome:
    """One genome the server publishes.

    ``genome_fasta`` and ``gtf`` are plain (not gzipped) files; the server gzips each once
    (deterministically) and caches the result by content. ``primary_assembly`` also publishes
    ``...dna.primary_assembly.fa.gz`` beside ``...dna.toplevel.fa.gz`` (Ensembl has it only for
    some species). ``collection`` (e.g. ``"bacteria_0_collection"``) puts a non-vertebrate
    genome in a collection folder, as Ensembl does for bacteria and some fungi and protists.
    """

    division: str
    species: str
    display_name: str
    taxonomy_id: int
    assembly: str
    genome_fasta: Path
    gtf: Path
    primary_assembly: bool = False
    collection: str | None = None
    scientific_name: str | None = None
    common_name: str | None = None
    assembly_accession: str | None = None
    assembly_level: str = "chromosome"
    strain: str | None = None
    species_taxonomy_id: int | None = None
    genebuild: str = "2025-01-Demo"
    aliases: tuple[str, ...] = ()
    #: The genome's species_id inside its core database; ``None``: 1, or its 1-based position
    #: among the served genomes of the same collection.
    species_id: int | None = None

    def __post_init__(self) -> None:
        if self.division not in DIVISIONS:
            raise ValueError(f"unknown division {self.division!r}; use one of {DIVISIONS}")
        if not re.fullmatch(r"[a-z0-9_]+", self.species):
            raise ValueError(f"species must be an Ensembl production name, got {self.species!r}")
        if self.collection is not None:
            if self.division == VERTEBRATES:
                raise ValueError("vertebrate genomes are never in a collection")
            if not re.fullmatch(r"[a-z0-9_]+_collection", self.collection):
                raise ValueError(
                    f"collection must look like 'bacteria_0_collection', got {self.collection!r}"
                )
        object.__setattr__(self, "genome_fasta", Path(self.genome_fasta))
        object.__setattr__(self, "gtf", Path(self.gtf))

    @classmethod
    def from_organism(
        cls,
        organism: DemoOrganism,
        *,
        division: str = VERTEBRATES,
        primary_assembly: bool = False,
        collection: str | None = None,
        **overrides: Any,
    ) -> ServedGenome:
        """A :class:`ServedGenome` for a generated :class:`DemoOrganism`."""
        values: dict[str, Any] = {
            "division": division,
            "species": organism.species,
            "display_name": organism.display_name,
            "taxonomy_id": organism.taxonomy_id,
            "assembly": organism.assembly,
            "genome_fasta": organism.genome_fasta,
            "gtf": organism.gtf,
            "primary_assembly": primary_assembly,
            "collection": collection,
            "scientific_name": organism.scientific_name,
            "assembly_accession": organism.assembly_accession,
            "genebuild": organism.genebuild,
        }
        values.update(overrides)
        return cls(**values)

    @property
    def is_vertebrate(self) -> bool:
        return self.division == VERTEBRATES

    @property
    def file_species(self) -> str:
        """The species as it starts file names: ``Homo_sapiens``."""
        return self.species[:1].upper() + self.species[1:]

    @property
    def file_assembly(self) -> str:
        """The assembly as it appears in file names (spaces become underscores)."""
        return self.assembly.replace(" ", "_")


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


@dataclass
class _Rule:
    kind: str  # "fail" | "truncate" | "delay"
    suffix: str
    remaining: int | None
    protocols: tuple[str, ...]
    params: dict[str, Any] = field(default_factory=dict)

    def matches(self, path: str, protocol: str) -> bool:
        return protocol in self.protocols and path.endswith(self.suffix)


# --------------------------------------------------------------------------- HTTP


class _HTTPServer(ThreadingHTTPServer):
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
    server: _HTTPServer

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
            elif path == "/ftp-genomes" or path.startswith("/ftp-genomes/"):
                self._tree(owner._genomes_pub, "/ftp-genomes", path, head, delay)
            elif path == "/ftp" or path.startswith("/ftp/"):
                self._tree(owner._vertebrates_pub, "/ftp", path, head, delay)
            elif path == "/":
                self._send_html(200, _root_page(owner), head)
            else:
                self._send_html(404, _error_page(404, "Not Found", path), head)
        except (BrokenPipeError, ConnectionResetError, _Truncated):
            self.close_connection = True

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
                _error_page(status, reason, path).encode(),
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

    def _tree(self, root: Path, prefix: str, path: str, head: bool, delay: _Rule | None) -> None:
        relative = path[len(prefix) :].lstrip("/")
        target = root / relative if relative else root
        try:
            resolved = target.resolve(strict=True)
            resolved.relative_to(self.server.owner._tree_root.resolve())
        except (FileNotFoundError, ValueError, OSError):
            self._send_html(404, _error_page(404, "Not Found", path), head)
            return
        if resolved.is_dir():
            if not path.endswith("/"):
                location = quote(path + "/")
                self._send_bytes(
                    301,
                    _error_page(301, "Moved Permanently", path).encode(),
                    "text/html;charset=UTF-8",
                    head,
                    [("Location", location)],
                )
                return
            self._send_html(200, _listing_page(path, target), head)
            return
        self._send_file(path, resolved, head, delay)

    def _send_file(self, path: str, file_path: Path, head: bool, delay: _Rule | None) -> None:
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


def _human_size(size: int) -> str:
    if size < 1024:
        return str(size)
    value = float(size)
    for unit in ("K", "M", "G", "T"):
        value /= 1024
        if value < 1024 or unit == "T":
            return f"{value:.1f}{unit}" if value < 10 else f"{value:.0f}{unit}"
    raise AssertionError("unreachable")


def _error_page(status: int, reason: str, path: str) -> str:
    return (
        '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n'
        f"<html><head>\n<title>{status} {html.escape(reason)}</title>\n</head><body>\n"
        f"<h1>{html.escape(reason)}</h1>\n"
        f"<p>The requested URL {html.escape(path)} was not found on this server.</p>\n"
        "</body></html>\n"
    )


def _listing_page(url_path: str, directory: Path) -> str:
    title = html.escape(url_path.rstrip("/") or "/")
    rows = []
    parent = url_path.rstrip("/").rsplit("/", 1)[0] + "/"
    rows.append(
        '<tr><td valign="top"><img src="/icons/back.gif" alt="[PARENTDIR]"></td>'
        f'<td><a href="{quote(parent)}">Parent Directory</a></td><td>&nbsp;</td>'
        '<td align="right">  - </td><td>&nbsp;</td></tr>'
    )
    for entry in sorted(directory.iterdir(), key=lambda p: p.name):
        if entry.name.startswith("."):
            continue
        is_dir = entry.is_dir()
        stat = entry.stat()
        modified = time.strftime("%Y-%m-%d %H:%M", time.gmtime(stat.st_mtime))
        name = entry.name + ("/" if is_dir else "")
        icon, alt = ("/icons/folder.gif", "[DIR]") if is_dir else ("/icons/unknown.gif", "[   ]")
        size = "  - " if is_dir else _human_size(stat.st_size)
        rows.append(
            f'<tr><td valign="top"><img src="{icon}" alt="{alt}"></td>'
            f'<td><a href="{quote(name)}">{html.escape(name)}</a></td>'
            f'<td align="right">{modified}  </td><td align="right">{size}</td>'
            "<td>&nbsp;</td></tr>"
        )
    return (
        '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">\n<html>\n <head>\n'
        f"  <title>Index of {title}</title>\n </head>\n <body>\n<h1>Index of {title}</h1>\n"
        "  <table>\n"
        '   <tr><th valign="top"><img src="/icons/blank.gif" alt="[ICO]"></th>'
        '<th><a href="?C=N;O=D">Name</a></th><th><a href="?C=M;O=A">Last modified</a></th>'
        '<th><a href="?C=S;O=A">Size</a></th><th><a href="?C=D;O=A">Description</a></th></tr>\n'
        '   <tr><th colspan="5"><hr></th></tr>\n'
        + "\n".join(rows)
        + '\n   <tr><th colspan="5"><hr></th></tr>\n</table>\n</body></html>\n'
    )


def _root_page(owner: EnsemblServer) -> str:
    links = [
        (owner.rest_url + "/info/software?content-type=application/json", "REST API"),
        (owner.ftp_url + "/", "FTP tree of ftp.ensembl.org/pub (vertebrates)"),
        (owner.divisions_ftp_url + "/", "FTP tree of ftp.ensemblgenomes.ebi.ac.uk/pub"),
    ]
    items = "".join(f'<li><a href="{href}">{html.escape(text)}</a></li>' for href, text in links)
    return (
        "<html><head><title>Ensembl demo server</title></head><body>"
        "<h1>Ensembl demo server (offline, generated data)</h1>"
        f"<ul>{items}</ul></body></html>\n"
    )


# --------------------------------------------------------------------------- FTP


def _make_ftp_server(owner: EnsemblServer, home: Path, host: str, port: int) -> Any:
    with warnings.catch_warnings():
        # pyftpdlib still imports asyncore/asynchat, deprecated since Python 3.12's notice.
        warnings.simplefilter("ignore", DeprecationWarning)
        from pyftpdlib.authorizers import DummyAuthorizer
        from pyftpdlib.handlers import FTPHandler
        from pyftpdlib.ioloop import IOLoop
        from pyftpdlib.servers import FTPServer

    ftp_logger = logging.getLogger("pyftpdlib")
    if not ftp_logger.handlers:
        # Otherwise pyftpdlib configures INFO logging to stderr by itself. Warnings still
        # propagate to the root logger.
        ftp_logger.addHandler(logging.NullHandler())
        ftp_logger.setLevel(logging.WARNING)

    authorizer = DummyAuthorizer()
    authorizer.add_anonymous(str(home), perm="elr")

    class Handler(FTPHandler):
        banner = "Ensembl demo FTP server (offline, anonymous, read-only)"
        _last_code = 0

        def respond(self, resp: str, logfun: Any = None) -> None:
            with contextlib.suppress(ValueError):
                self._last_code = int(resp[:3])
            if logfun is None:
                super().respond(resp)
            else:
                super().respond(resp, logfun)

        def _gated(self, command: str, fs_path: str, call: Any, *args: Any) -> Any:
            ftp_path = self.fs.fs2ftp(fs_path)
            delay = owner._take_rule("delay", ftp_path, "ftp")
            if delay is not None:
                owner._sleep(delay.params["seconds"])
            fail = owner._take_rule("fail", ftp_path, "ftp")
            if fail is not None:
                code = 421 if fail.params["status"] in (429, 503) else 550
                self.respond(f"{code} Injected failure for {ftp_path}.")
                owner._record_ftp(command, ftp_path, code)
                return None
            self._last_code = 0
            result = call(*args)
            owner._record_ftp(command, ftp_path, self._last_code)
            return result

        def ftp_RETR(self, file: str) -> Any:
            return self._gated("RETR", file, super().ftp_RETR, file)

        def ftp_SIZE(self, path: str) -> Any:
            return self._gated("SIZE", path, super().ftp_SIZE, path)

        def ftp_MDTM(self, path: str) -> Any:
            return self._gated("MDTM", path, super().ftp_MDTM, path)

        def ftp_LIST(self, path: str) -> Any:
            return self._gated("LIST", path, super().ftp_LIST, path)

        def ftp_NLST(self, path: str) -> Any:
            return self._gated("NLST", path, super().ftp_NLST, path)

        def ftp_MLSD(self, path: str) -> Any:
            return self._gated("MLSD", path, super().ftp_MLSD, path)

    Handler.authorizer = authorizer
    Handler.permit_foreign_addresses = False
    return FTPServer((host, port), Handler, ioloop=IOLoop())


# --------------------------------------------------------------------------- server


class EnsemblServer:
    """Ensembl's REST API and FTP trees for a few genomes, on loopback. See the module doc.

    ``ensembl_release`` is what ``/info/software`` reports and names the vertebrate
    ``release-<E>`` folder and GTF files; ``eg_release`` is what ``/info/eg_version`` reports
    and names the divisions' ``release-<G>`` folders and GTF files.

    ``unknown_division``: what ``info/genomes/division/<X>`` and ``info/species?division=<X>``
    answer for a division that does not exist: ``"error"`` (400 ``{"error": ...}``, the
    default) or ``"empty"`` (200 with no genomes, which is what Ensembl's own test suite
    expects of ``info/species``).

    ``legacy_genome_fields``: also put the keys that the Ensembl Genomes REST server had
    (``species``, ``dbname``, ``species_id``) into each ``info/genomes`` object; set it to
    ``False`` to check that a client does not depend on them.

    ``cache_dir`` holds the gzipped files, keyed by content, so that several servers (or
    runs) gzip a genome only once; by default a folder in the system's temporary directory.
    """

    def __init__(
        self,
        genomes: Sequence[ServedGenome],
        *,
        ensembl_release: int = 114,
        eg_release: int = 61,
        host: str = "127.0.0.1",
        port: int = 0,
        ftp: bool = False,
        ftp_port: int = 0,
        divisions_ftp_port: int = 0,
        cache_dir: str | Path | None = None,
        compresslevel: int = 6,
        unknown_division: Literal["error", "empty"] = "error",
        legacy_genome_fields: bool = True,
        file_mtime: float = DEFAULT_FILE_MTIME,
    ) -> None:
        names = [(g.division, g.species) for g in genomes]
        if len(set(names)) != len(names):
            raise ValueError("each (division, species) may be served only once")
        if unknown_division not in ("error", "empty"):
            raise ValueError("unknown_division must be 'error' or 'empty'")
        self.genomes = list(_assign_species_ids(genomes))
        self.ensembl_release = ensembl_release
        self.eg_release = eg_release
        self.host = host
        self._port = port
        self._want_ftp = ftp
        self._ftp_ports = (ftp_port, divisions_ftp_port)
        self.cache_dir = (
            Path(cache_dir)
            if cache_dir
            else Path(tempfile.gettempdir()) / ("refinery-demo-ensembl-cache")
        )
        self.compresslevel = compresslevel
        self.unknown_division = unknown_division
        self.legacy_genome_fields = legacy_genome_fields
        self.file_mtime = file_mtime

        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self._requests: list[RecordedRequest] = []
        self._checksum_originals: dict[Path, bytes] = {}
        self._stop_event = threading.Event()
        self._base_counts: dict[tuple[str, str], int] = {}
        self._workdir: Path | None = None
        self._http: _HTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._ftp_servers: list[Any] = []
        self._ftp_addresses: list[tuple[str, int]] = []

    # ----- lifecycle

    def start(self) -> EnsemblServer:
        """Build the file trees, then start serving. Returns ``self``."""
        if self._http is not None:
            raise RuntimeError("server already started")
        self._stop_event.clear()
        self._workdir = Path(tempfile.mkdtemp(prefix="ensembl-demo-"))
        try:
            self._build_trees()
            self._http = _HTTPServer((self.host, self._port), self)
            thread = threading.Thread(
                target=self._http.serve_forever,
                kwargs={"poll_interval": 0.1},
                name="ensembl-demo-http",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
            if self._want_ftp:
                homes = (self._tree_root / "ensembl", self._tree_root / "ensemblgenomes")
                for home, port in zip(homes, self._ftp_ports, strict=True):
                    server = _make_ftp_server(self, home, self.host, port)
                    self._ftp_servers.append(server)
                    self._ftp_addresses.append(server.socket.getsockname()[:2])
                    ftp_thread = threading.Thread(
                        target=self._run_ftp, args=(server,), name="ensembl-demo-ftp", daemon=True
                    )
                    ftp_thread.start()
                    self._threads.append(ftp_thread)
        except BaseException:
            self.stop()
            raise
        return self

    def _run_ftp(self, server: Any) -> None:
        try:
            while not self._stop_event.is_set():
                server.ioloop.loop(timeout=0.05, blocking=False)
        finally:
            server.close_all()

    def stop(self) -> None:
        """Stop serving and delete the file trees (the gzip cache is kept)."""
        self._stop_event.set()
        if self._http is not None:
            self._http.shutdown()
            self._http.close_open_connections()
            self._http.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()
        self._ftp_servers.clear()
        self._ftp_addresses.clear()
        self._http = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        self._checksum_originals.clear()

    def __enter__(self) -> EnsemblServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ----- URLs

    @property
    def port(self) -> int:
        if self._http is None:
            raise RuntimeError("server not started")
        return self._http.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def rest_url(self) -> str:
        """Stands for ``https://rest.ensembl.org``."""
        return f"{self.base_url}/rest"

    @property
    def ftp_url(self) -> str:
        """Stands for ``https://ftp.ensembl.org/pub`` (vertebrates)."""
        return f"{self.base_url}/ftp"

    @property
    def divisions_ftp_url(self) -> str:
        """Stands for ``https://ftp.ensemblgenomes.ebi.ac.uk/pub`` (the other divisions)."""
        return f"{self.base_url}/ftp-genomes"

    @property
    def ftp_scheme_url(self) -> str:
        """Stands for ``ftp://ftp.ensembl.org/pub`` (needs ``ftp=True``)."""
        return self._ftp_root_url(0)

    @property
    def divisions_ftp_scheme_url(self) -> str:
        """Stands for ``ftp://ftp.ensemblgenomes.ebi.ac.uk/pub`` (needs ``ftp=True``)."""
        return self._ftp_root_url(1)

    def _ftp_root_url(self, index: int) -> str:
        if not self._ftp_addresses:
            raise RuntimeError("FTP is not being served (start the server with ftp=True)")
        host, port = self._ftp_addresses[index]
        return f"ftp://{host}:{port}/pub"

    def site_root_url(self, genome: ServedGenome, protocol: str = "http") -> str:
        """The URL standing for the ``pub`` folder of the FTP site that holds ``genome``."""
        if protocol == "http":
            return self.ftp_url if genome.is_vertebrate else self.divisions_ftp_url
        if protocol == "ftp":
            return self.ftp_scheme_url if genome.is_vertebrate else self.divisions_ftp_scheme_url
        raise ValueError("protocol must be 'http' or 'ftp'")

    def release_folder(self, genome: ServedGenome) -> str:
        """``release-114`` or ``fungi/release-61``: the release folder under ``pub``."""
        if genome.is_vertebrate:
            return f"release-{self.ensembl_release}"
        return f"{SHORT_DIVISIONS[genome.division]}/release-{self.eg_release}"

    def species_folder(self, genome: ServedGenome, kind: str) -> str:
        """``release-114/fasta/<species>/dna`` or ``release-114/gtf/<species>`` (under ``pub``)."""
        collection = f"{genome.collection}/" if genome.collection else ""
        base = f"{self.release_folder(genome)}/{kind}/{collection}{genome.species}"
        return f"{base}/dna" if kind == "fasta" else base

    def fasta_filename(self, genome: ServedGenome, level: str | None = None) -> str:
        """``<Species>.<Assembly>.dna.<level>.fa.gz``; ``level`` defaults to
        ``primary_assembly`` where the genome has one, else ``toplevel``."""
        if level is None:
            level = "primary_assembly" if genome.primary_assembly else "toplevel"
        return f"{genome.file_species}.{genome.file_assembly}.dna.{level}.fa.gz"

    def gtf_filename(self, genome: ServedGenome) -> str:
        release = self.ensembl_release if genome.is_vertebrate else self.eg_release
        return f"{genome.file_species}.{genome.file_assembly}.{release}.gtf.gz"

    def fasta_url(
        self, genome: ServedGenome, *, protocol: str = "http", level: str | None = None
    ) -> str:
        return "/".join(
            (
                self.site_root_url(genome, protocol),
                self.species_folder(genome, "fasta"),
                self.fasta_filename(genome, level),
            )
        )

    def gtf_url(self, genome: ServedGenome, *, protocol: str = "http") -> str:
        return "/".join(
            (
                self.site_root_url(genome, protocol),
                self.species_folder(genome, "gtf"),
                self.gtf_filename(genome),
            )
        )

    def checksums_url(self, file_url: str) -> str:
        """The ``CHECKSUMS`` URL of the folder holding ``file_url``."""
        return file_url.rsplit("/", 1)[0] + "/CHECKSUMS"

    def species_txt_url(self, division: str, *, protocol: str = "http") -> str:
        """The ``species_<Division>.txt`` of a division's current release."""
        if division == VERTEBRATES:
            root = self.ftp_url if protocol == "http" else self.ftp_scheme_url
            return f"{root}/release-{self.ensembl_release}/species_{division}.txt"
        root = self.divisions_ftp_url if protocol == "http" else self.divisions_ftp_scheme_url
        short = SHORT_DIVISIONS[division]
        return f"{root}/{short}/release-{self.eg_release}/species_{division}.txt"

    def core_db(self, genome: ServedGenome) -> str:
        """The name of the core database holding ``genome``, as in ``species_<Division>.txt``."""
        if genome.is_vertebrate:
            return f"{genome.species}_core_{self.ensembl_release}_1"
        owner = genome.collection or genome.species
        return f"{owner}_core_{self.eg_release}_{self.ensembl_release}_1"

    # ----- local files

    @property
    def _tree_root(self) -> Path:
        if self._workdir is None:
            raise RuntimeError("server not started")
        return self._workdir / "tree"

    @property
    def _vertebrates_pub(self) -> Path:
        return self._tree_root / "ensembl" / "pub"

    @property
    def _genomes_pub(self) -> Path:
        return self._tree_root / "ensemblgenomes" / "pub"

    def local_path(self, url: str) -> Path:
        """The file on disk that a served URL (http or ftp scheme) stands for."""
        split = urlsplit(url)
        path = unquote(split.path)
        if split.scheme == "ftp":
            home = "ensembl" if split.port == self._ftp_addresses[0][1] else "ensemblgenomes"
            return self._tree_root / home / path.lstrip("/")
        for prefix, root in (("/ftp-genomes", self._genomes_pub), ("/ftp", self._vertebrates_pub)):
            if path == prefix or path.startswith(prefix + "/"):
                return root / path[len(prefix) :].lstrip("/")
        raise ValueError(f"{url} is not a file URL of this server")

    # ----- requests

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

    # ----- fault injection

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
            _Rule(
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
            _Rule("truncate", path_suffix, times, ("http",), {"nbytes": nbytes, "mode": mode})
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
            _Rule(
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

    def clear_faults(self) -> None:
        """Remove every injected fault and restore corrupted ``CHECKSUMS`` files."""
        with self._lock:
            self._rules.clear()
            originals = dict(self._checksum_originals)
            self._checksum_originals.clear()
        for path, data in originals.items():
            _write_keep_mtime(path, data, self.file_mtime)

    def _add_rule(self, rule: _Rule) -> None:
        if rule.remaining is not None and rule.remaining < 1:
            raise ValueError("times must be at least 1 (or None for 'always')")
        with self._lock:
            self._rules.append(rule)

    def _take_rule(self, kind: str, path: str, protocol: str) -> _Rule | None:
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

    # ----- REST

    def _divisions_matching(self, name: str) -> str | None:
        for division in DIVISIONS:
            if division.lower() == name.lower():
                return division
        return None

    def _rest_response(self, route: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        if route == "/info/ping":
            return 200, {"ping": 1}
        if route == "/info/software":
            return 200, {"release": self.ensembl_release}
        if route == "/info/eg_version":
            return 200, {"version": str(self.eg_release)}
        if route == "/info/data":
            return 200, {"releases": [self.ensembl_release]}
        if route == "/info/divisions":
            return 200, list(DIVISIONS)
        if route == "/info/species":
            return self._info_species(query)
        match = re.fullmatch(r"/info/genomes/division/([^/]+)", route)
        if match:
            division = self._divisions_matching(match.group(1))
            if division is None:
                if self.unknown_division == "empty":
                    return 200, []
                return 400, {"error": f"Division {match.group(1)} not found"}
            return 200, [self.genome_info(g) for g in self.genomes if g.division == division]
        match = re.fullmatch(r"/info/genomes/([^/]+)", route)
        if match and match.group(1) not in ("division", "taxonomy", "assembly", "accession"):
            for genome in self.genomes:
                if match.group(1).lower() in (genome.species, genome.display_name.lower()):
                    return 200, self.genome_info(genome)
            return 400, {"error": f"Genome {match.group(1)} not found"}
        return 404, {"error": f"page not found: /rest{route}"}

    def _info_species(self, query: dict[str, list[str]]) -> tuple[int, Any]:
        asked = (query.get("division") or [VERTEBRATES])[-1]
        division = self._divisions_matching(asked)
        if division is None:
            if self.unknown_division == "empty":
                return 200, {"species": []}
            return 400, {"error": f"Division {asked} not found"}
        collection = (query.get("strain_collection") or [None])[-1]
        hide_strain = (query.get("hide_strain_info") or ["0"])[-1] not in ("0", "")
        species = []
        for genome in self.genomes:
            if genome.division != division:
                continue
            entry = self.species_info(genome)
            if collection is not None and entry["strain_collection"] != collection:
                continue
            if hide_strain:
                entry.pop("strain")
                entry.pop("strain_collection")
            species.append(entry)
        return 200, {"species": species}

    def genome_info(self, genome: ServedGenome) -> dict[str, Any]:
        """The object ``info/genomes/division/<division>`` lists for ``genome``.

        Keys and value types follow Ensembl's metadata API (GenomeInfo + GenomeOrganismInfo +
        GenomeAssemblyInfo rendered to JSON): ids, counts and flags are strings, missing
        values ``null``.
        """
        index = self.genomes.index(genome) + 1
        assembly_default = genome.file_assembly
        info: dict[str, Any] = {
            "division": genome.division,
            "genebuild": genome.genebuild,
            "has_pan_compara": "0",
            "has_peptide_compara": "0",
            "has_genome_alignments": "0",
            "has_synteny": "0",
            "has_other_alignments": "0",
            "has_variations": "0",
            "is_reference": "0",
            "reference": None,
            "assembly_id": str(index),
            "organism_id": str(index),
            "data_release_id": "1",
            "name": genome.species,
            "display_name": genome.display_name,
            "scientific_name": genome.scientific_name or genome.display_name,
            "url_name": genome.file_species,
            "strain": genome.strain,
            "serotype": None,
            "taxonomy_id": str(genome.taxonomy_id),
            "species_taxonomy_id": str(genome.species_taxonomy_id or genome.taxonomy_id),
            "assembly_name": genome.assembly,
            "assembly_accession": genome.assembly_accession,
            "assembly_default": assembly_default,
            "assembly_ucsc": None,
            "assembly_level": genome.assembly_level,
            "base_count": str(self._base_counts.get((genome.division, genome.species), 0)),
        }
        if self.legacy_genome_fields:
            info["species"] = genome.species
            info["dbname"] = self.core_db(genome)
            info["species_id"] = str(genome.species_id)
        return info

    def species_info(self, genome: ServedGenome) -> dict[str, Any]:
        """The object ``info/species`` lists for ``genome``."""
        release = self.ensembl_release
        return {
            "division": genome.division,
            "name": genome.species,
            "display_name": genome.display_name,
            "common_name": genome.common_name,
            "taxon_id": str(genome.taxonomy_id),
            "accession": genome.assembly_accession,
            "assembly": genome.assembly,
            "release": release,
            "groups": ["core"],
            "aliases": list(genome.aliases),
            "strain": genome.strain,
            "strain_collection": None,
        }

    # ----- building the trees

    def _gzipped(self, source: Path) -> Path:
        digest = hashlib.sha256()
        with open(source, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        cached = self.cache_dir / f"{digest.hexdigest()}-{self.compresslevel}.gz"
        if not cached.exists():
            gzip_file(source, cached, compresslevel=self.compresslevel)
        return cached

    def _place(self, cached: Path, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(cached, dest)
        except OSError:
            shutil.copyfile(cached, dest)

    def _build_trees(self) -> None:
        leaf_folders: set[Path] = set()
        for genome in self.genomes:
            if not genome.genome_fasta.is_file():
                raise FileNotFoundError(f"genome FASTA not found: {genome.genome_fasta}")
            if not genome.gtf.is_file():
                raise FileNotFoundError(f"GTF not found: {genome.gtf}")
            self._base_counts[(genome.division, genome.species)] = _count_bases(genome.genome_fasta)
            pub = self._vertebrates_pub if genome.is_vertebrate else self._genomes_pub
            fasta_dir = pub / self.species_folder(genome, "fasta")
            gtf_dir = pub / self.species_folder(genome, "gtf")
            fasta_gz = self._gzipped(genome.genome_fasta)
            gtf_gz = self._gzipped(genome.gtf)
            self._place(fasta_gz, fasta_dir / self.fasta_filename(genome, "toplevel"))
            if genome.primary_assembly:
                self._place(fasta_gz, fasta_dir / self.fasta_filename(genome, "primary_assembly"))
            self._place(gtf_gz, gtf_dir / self.gtf_filename(genome))
            if genome.is_vertebrate and genome.assembly_level == "chromosome":
                chr_name = self.gtf_filename(genome).replace(".gtf.gz", ".chr.gtf.gz")
                self._place(gtf_gz, gtf_dir / chr_name)
            (fasta_dir / "README").write_text(_dna_readme(genome), encoding="ascii")
            (gtf_dir / "README").write_text(_gtf_readme(genome), encoding="ascii")
            leaf_folders.update((fasta_dir, gtf_dir))

        self._write_species_files()
        for folder in sorted(leaf_folders):
            _write_checksums(folder)
        self._make_links()
        _set_mtimes(self._tree_root, self.file_mtime)

    def _write_species_files(self) -> None:
        for division in DIVISIONS:
            if division == VERTEBRATES:
                target = self._vertebrates_pub / f"release-{self.ensembl_release}"
            else:
                target = (
                    self._genomes_pub / SHORT_DIVISIONS[division] / f"release-{self.eg_release}"
                )
            target.mkdir(parents=True, exist_ok=True)
            lines = ["#" + "\t".join(SPECIES_TXT_COLUMNS) + "\n"]
            for genome in self.genomes:
                if genome.division != division:
                    continue
                row = [
                    genome.display_name,
                    genome.species,
                    genome.division,
                    str(genome.taxonomy_id),
                    genome.assembly,
                    genome.assembly_accession or "",
                    genome.genebuild,
                    "N",
                    "N",
                    "N",
                    "N",
                    "N",
                    "N",
                    self.core_db(genome),
                    str(genome.species_id),
                    "\n",
                ]
                # Ensembl joins the newline in as a last field: every row ends "\t\n".
                lines.append("\t".join(row))
            (target / f"species_{division}.txt").write_text("".join(lines), encoding="utf-8")

    def _make_links(self) -> None:
        vertebrate_release = self._vertebrates_pub / f"release-{self.ensembl_release}"
        for kind in ("fasta", "gtf"):
            (vertebrate_release / kind).mkdir(parents=True, exist_ok=True)
            _symlink(
                f"release-{self.ensembl_release}/{kind}", self._vertebrates_pub / f"current_{kind}"
            )
        release_dir = self._genomes_pub / f"release-{self.eg_release}"
        release_dir.mkdir(parents=True, exist_ok=True)
        for short in SHORT_DIVISIONS.values():
            (self._genomes_pub / short / f"release-{self.eg_release}").mkdir(
                parents=True, exist_ok=True
            )
            _symlink(f"release-{self.eg_release}", self._genomes_pub / short / "current")
            _symlink(f"../{short}/release-{self.eg_release}", release_dir / short)


def _assign_species_ids(genomes: Sequence[ServedGenome]) -> Iterable[ServedGenome]:
    per_collection: dict[tuple[str, str], int] = {}
    for genome in genomes:
        if genome.species_id is not None:
            yield genome
            continue
        if genome.collection is None:
            yield replace(genome, species_id=1)
            continue
        key = (genome.division, genome.collection)
        per_collection[key] = per_collection.get(key, 0) + 1
        yield replace(genome, species_id=per_collection[key])


def _count_bases(fasta: Path) -> int:
    total = 0
    with open(fasta, "rb") as handle:
        for line in handle:
            if not line.startswith(b">"):
                total += len(line.rstrip(b"\r\n"))
    return total


def _write_checksums(folder: Path) -> None:
    lines = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.startswith(".") or entry.name.startswith("CHECKSUM") or not entry.is_file():
            continue
        checksum, blocks = bsd_sum_path(entry)
        lines.append(format_sum_line(checksum, blocks, entry.name))
    (folder / "CHECKSUMS").write_text("".join(lines), encoding="ascii")


def _write_keep_mtime(path: Path, data: bytes, mtime: float) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    os.utime(partial, (mtime, mtime))
    os.replace(partial, path)


def _symlink(target: str, link: Path) -> None:
    if link.is_symlink() or link.exists():
        return
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target, target_is_directory=True)


def _set_mtimes(root: Path, mtime: float) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if not path.is_symlink():
                os.utime(path, (mtime, mtime))
    os.utime(root, (mtime, mtime))


def _dna_readme(genome: ServedGenome) -> str:
    return (
        "#### README ####\n\n"
        "Demo data generated offline by refinery.demo; NOT an Ensembl release.\n\n"
        "The genome assembly represented here corresponds to INSDC Assembly ID\n"
        f"{genome.assembly_accession or 'none'}\n\n"
        "#######################\nFasta DNA dumps\n#######################\n\n"
        "The files are consistently named following this pattern:\n"
        "   <species>.<assembly>.<sequence type>.<id type>.<id>.fa.gz\n\n"
        "<id type> 'toplevel' holds every top-level sequence region; 'primary_assembly'\n"
        "the same without haplotypes and patches (present for some species only).\n"
    )


def _gtf_readme(genome: ServedGenome) -> str:
    return (
        "#### README ####\n\n"
        "Demo data generated offline by refinery.demo; NOT an Ensembl release.\n\n"
        "GTF (Gene Transfer Format) gene sets for "
        f"{genome.scientific_name or genome.display_name}, assembly {genome.assembly}.\n"
        "<species>.<assembly>.<version>.gtf.gz: the full gene set;\n"
        "<species>.<assembly>.<version>.chr.gtf.gz: only the chromosomal sequence regions.\n"
    )


# --------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    """Generate a demo organism, serve it as Ensembl would, print the URLs, wait for Ctrl-C."""
    from refinery.demo.organism import DEMO_SPECIES, generate_organism

    parser = argparse.ArgumentParser(
        prog="python -m refinery.demo.ensembl_server",
        description="Serve a generated demo organism the way Ensembl's REST API and FTP do.",
    )
    parser.add_argument("--genes", type=int, default=200, help="genes to generate (200)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (1)")
    parser.add_argument("--species", default=DEMO_SPECIES, help="production name")
    parser.add_argument(
        "--division",
        action="append",
        choices=DIVISIONS,
        help="division(s) to publish the organism in (default EnsemblVertebrates); repeatable",
    )
    parser.add_argument("--collection", help="collection folder for non-vertebrate divisions")
    parser.add_argument(
        "--primary-assembly", action="store_true", help="also publish primary_assembly"
    )
    parser.add_argument(
        "--out", type=Path, help="where to write the organism (default: a temp dir)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="HTTP port (default: any free one)")
    parser.add_argument("--ftp", action="store_true", help="also serve real FTP")
    parser.add_argument("--ftp-port", type=int, default=0)
    parser.add_argument("--divisions-ftp-port", type=int, default=0)
    parser.add_argument("--ensembl-release", type=int, default=114)
    parser.add_argument("--eg-release", type=int, default=61)
    parser.add_argument("--json", action="store_true", help="print the URLs as one JSON object")
    args = parser.parse_args(argv)

    out_dir = args.out or Path(tempfile.mkdtemp(prefix="refinery-demo-organism-"))
    organism = generate_organism(out_dir, species=args.species, n_genes=args.genes, seed=args.seed)
    genomes = [
        ServedGenome.from_organism(
            organism,
            division=division,
            primary_assembly=args.primary_assembly,
            collection=args.collection if division != VERTEBRATES else None,
        )
        for division in (args.division or [VERTEBRATES])
    ]
    server = EnsemblServer(
        genomes,
        ensembl_release=args.ensembl_release,
        eg_release=args.eg_release,
        host=args.host,
        port=args.port,
        ftp=args.ftp,
        ftp_port=args.ftp_port,
        divisions_ftp_port=args.divisions_ftp_port,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with server:
        urls: dict[str, Any] = {
            "rest_url": server.rest_url,
            "ftp_url": server.ftp_url,
            "divisions_ftp_url": server.divisions_ftp_url,
            "organism_dir": str(out_dir),
            "species": organism.species,
            "genomes": [
                {
                    "division": g.division,
                    "fasta_url": server.fasta_url(g),
                    "gtf_url": server.gtf_url(g),
                }
                for g in server.genomes
            ],
        }
        if args.ftp:
            urls["ftp_scheme_url"] = server.ftp_scheme_url
            urls["divisions_ftp_scheme_url"] = server.divisions_ftp_scheme_url
        if args.json:
            print(json.dumps(urls), flush=True)
        else:
            print(
                f"Demo organism {organism.species} ({len(organism.genes)} genes, "
                f"{len(organism.transcripts)} transcripts) in {out_dir}"
            )
            print(f"REST API (rest.ensembl.org):                 {server.rest_url}")
            print(f"FTP tree over HTTP (ftp.ensembl.org/pub):    {server.ftp_url}")
            print(f"FTP tree over HTTP (ftp.ensemblgenomes/pub): {server.divisions_ftp_url}")
            if args.ftp:
                print(f"FTP (ftp.ensembl.org/pub):                   {server.ftp_scheme_url}")
                divisions_ftp = server.divisions_ftp_scheme_url
                print(f"FTP (ftp.ensemblgenomes/pub):                {divisions_ftp}")
            for entry in urls["genomes"]:
                print(f"  {entry['division']}: {entry['fasta_url']}")
                print(f"  {' ' * len(entry['division'])}  {entry['gtf_url']}")
            print("Press Ctrl-C to stop.", flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
