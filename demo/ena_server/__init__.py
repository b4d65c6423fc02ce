"""An offline stand-in for ENA on loopback: the Portal API's `filereport`
(`result=read_run`, TSV or JSON, in ENA's shapes) and the FASTQ files it lists,
served over HTTP with `Range` support.

`EnaServer(runs).start()` serves `ServedRun`s; `portal_url` is what
`ENA_PORTAL_URL` should be and `fastq_url` what `ENA_FASTQ_URL` should be.
`fastq_ftp` values name ENA's own host (`ftp.sra.ebi.ac.uk/vol1/fastq/…`), as
ENA does. Faults for tests: `fail_next(n, status)` answers the next n portal
requests with `status`; `delay` makes every portal answer slow; `corrupt(name,
times)` serves other bytes for a file's next `times` requests. Every request
path is kept in `requests`.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from hashlib import md5
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

__all__ = ["EnaServer", "ServedRun"]

ACCESSION = re.compile(r"(PRJ[EDN][AB]|[SED]R[PRSX]|SAM[EDN][A-Z]?)[0-9]{1,12}")


@dataclass
class ServedRun:
    """One run as ENA describes it; `files` are (name, bytes), `fields` override
    any reported field (to play a broken record)."""

    run: str
    study: str
    sample: str
    experiment: str
    scientific_name: str
    tax_id: int
    files: list[tuple[str, bytes]]
    layout: str = "SINGLE"
    strategy: str = "RNA-Seq"
    source: str = "TRANSCRIPTOMIC"
    platform: str = "ILLUMINA"
    read_count: int = 0
    read_length: int = 75
    secondary_study: str = ""
    fields: dict[str, str] = field(default_factory=dict)

    def folder(self) -> str:
        return f"vol1/fastq/{self.run[:6]}/{self.run[-3:]}/{self.run}"

    def record(self) -> dict[str, str]:
        paths = [f"ftp.sra.ebi.ac.uk/{self.folder()}/{name}" for name, _ in self.files]
        bases = self.read_count * self.read_length * (2 if self.layout == "PAIRED" else 1)
        row = {
            "run_accession": self.run,
            "experiment_accession": self.experiment,
            "study_accession": self.study,
            "secondary_study_accession": self.secondary_study,
            "sample_accession": self.sample,
            "secondary_sample_accession": "SRS" + self.sample[-6:],
            "scientific_name": self.scientific_name,
            "tax_id": str(self.tax_id),
            "library_layout": self.layout,
            "library_strategy": self.strategy,
            "library_source": self.source,
            "instrument_platform": self.platform,
            "instrument_model": "Illumina NovaSeq 6000",
            "read_count": str(self.read_count),
            "base_count": str(bases),
            "fastq_ftp": ";".join(paths),
            "fastq_md5": ";".join(md5(data).hexdigest() for _, data in self.files),
            "fastq_bytes": ";".join(str(len(data)) for _, data in self.files),
            "sample_title": f"demo sample {self.sample}",
            "experiment_title": f"Illumina NovaSeq 6000 sequencing of {self.sample}",
            "study_title": f"demo study {self.study}",
        }
        row.update(self.fields)
        return row

    def matches(self, accession: str) -> bool:
        return accession in (self.run, self.study, self.secondary_study, self.sample,
                             self.experiment)  # fmt: skip


class EnaServer:
    """ENA's filereport and FASTQ files for `runs`, on 127.0.0.1."""

    def __init__(self, runs: list[ServedRun], host: str = "127.0.0.1", port: int = 0):
        self.runs = list(runs)
        self.host, self._port = host, port
        self.requests: list[str] = []
        self.delay_s = 0.0
        self._failures: list[int] = []
        self._corrupt: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> EnaServer:
        handler = type("Handler", (_Handler,), {"ena": self})
        self._server = ThreadingHTTPServer((self.host, self._port), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self._server.server_address[1]}"

    @property
    def portal_url(self) -> str:
        return f"{self.base_url}/ena/portal/api"

    @property
    def fastq_url(self) -> str:
        return f"{self.base_url}/ftp"

    # --- faults ------------------------------------------------------------------------------

    def fail_next(self, times: int, status: int = 503) -> None:
        with self._lock:
            self._failures.extend([status] * times)

    def corrupt(self, name: str, times: int = 1) -> None:
        with self._lock:
            self._corrupt[name] = times

    def _take_failure(self) -> int | None:
        with self._lock:
            return self._failures.pop(0) if self._failures else None

    def _take_corruption(self, name: str) -> bool:
        with self._lock:
            left = self._corrupt.get(name, 0)
            if left:
                self._corrupt[name] = left - 1
            return bool(left)

    # --- answers -----------------------------------------------------------------------------

    def filereport(self, query: dict[str, list[str]]) -> tuple[int, str, bytes]:
        accession = (query.get("accession") or [""])[0]
        answer_format = (query.get("format") or ["tsv"])[0]
        if not ACCESSION.fullmatch(accession):
            message = {"message": f"Invalid accession: {accession}", "status": 400}
            return 400, "application/json", json.dumps(message).encode()
        if (query.get("result") or [""])[0] != "read_run":
            return 400, "application/json", b'{"message": "result must be read_run"}'
        asked = [f for f in (query.get("fields") or [""])[0].split(",") if f]
        names = ["run_accession"] + [f for f in asked if f != "run_accession"]
        found = [run.record() for run in self.runs if run.matches(accession)]
        rows = [{n: record.get(n, "") for n in names} for record in found]
        if answer_format == "json":
            return 200, "application/json", json.dumps(rows).encode()
        if not rows:
            return 200, "text/plain", b""
        lines = ["\t".join(names)] + ["\t".join(row[n] for n in names) for row in rows]
        return 200, "text/plain", ("\n".join(lines) + "\n").encode()

    def fastq(self, path: str) -> bytes | None:
        for run in self.runs:
            for name, data in run.files:
                if path == f"/ftp/{run.folder()}/{name}":
                    if self._take_corruption(name):
                        return bytes(b ^ 0x01 for b in data[:64]) + data[64:]
                    return data
        return None


class _Handler(BaseHTTPRequestHandler):
    ena: EnaServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        self.ena.requests.append(parts.path)
        if parts.path == "/ena/portal/api/filereport":
            if self.ena.delay_s:
                time.sleep(self.ena.delay_s)
            failure = self.ena._take_failure()
            if failure is not None:
                return self._send(failure, "text/plain", b"busy")
            return self._send(*self.ena.filereport(parse_qs(parts.query)))
        data = self.ena.fastq(parts.path)
        if data is None:
            return self._send(404, "text/plain", b"not found")
        match = re.fullmatch(r"bytes=([0-9]+)-", self.headers.get("Range", ""))
        if match and int(match.group(1)) < len(data):
            start = int(match.group(1))
            extra = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}
            return self._send(206, "application/octet-stream", data[start:], extra)
        return self._send(200, "application/octet-stream", data)

    def _send(self, status: int, kind: str, body: bytes, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)
