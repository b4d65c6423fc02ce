"""`EnsemblServer`: its configuration and lifecycle, composed of the other modules' parts."""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from demo.ensembl_server.faults import FaultInjection, Rule
from demo.ensembl_server.ftp_server import make_ftp_server
from demo.ensembl_server.genomes import ServedGenome, assign_species_ids
from demo.ensembl_server.http_handler import DemoHTTPServer
from demo.ensembl_server.recording import RecordedRequest, RequestLog
from demo.ensembl_server.rest import RestApi
from demo.ensembl_server.trees import DEFAULT_FILE_MTIME, TreeBuilder
from demo.ensembl_server.urls import SiteUrls

__all__ = ["EnsemblServer"]


class EnsemblServer(SiteUrls, RequestLog, FaultInjection, RestApi, TreeBuilder):
    """Ensembl's REST API and FTP trees for a few genomes, on loopback.

    See :mod:`demo.ensembl_server` for what it serves. Its methods come in parts:
    :class:`~.urls.SiteUrls` (URLs and file names), :class:`~.recording.RequestLog`
    (:attr:`requests`), :class:`~.faults.FaultInjection`, :class:`~.rest.RestApi` and
    :class:`~.trees.TreeBuilder`; this class holds the configuration and the lifecycle.

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
        self.genomes = list(assign_species_ids(genomes))
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
        self._rules: list[Rule] = []
        self._requests: list[RecordedRequest] = []
        self._checksum_originals: dict[Path, bytes] = {}
        self._overridden: dict[Path, bytes | None] = {}
        self._required_credentials: tuple[str, str] | None = None
        self._stop_event = threading.Event()
        self._base_counts: dict[tuple[str, str], int] = {}
        self._workdir: Path | None = None
        self._http: DemoHTTPServer | None = None
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
            self._http = DemoHTTPServer((self.host, self._port), self)
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
                    server = make_ftp_server(self, home, self.host, port)
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
        self._overridden.clear()

    def __enter__(self) -> EnsemblServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
