"""The engine side of the engine API (`manage.py basecall_engine`): a GPU server
outside the cluster that asks the refinery for basecalling work, runs Dorado on
it, and sends the outputs back.

    loop: POST assign → fetch the pod5 files → dorado basecaller → split per pod5
          → POST completed (multipart, the outputs as `outputs` files)

While it holds jobs a thread sends each one's keepalive every report-back
period; a 409 there means the refinery took the job back: Dorado is stopped and
the job dropped. SIGTERM or Ctrl-C stops Dorado and reports the job
interrupted, so its retry does not count, then the engine exits.

The engine needs no database: it talks to the refinery over HTTP only, with
its own token (`manage.py engines add NAME` on the refinery).
"""

from __future__ import annotations

import hashlib
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

from common.filenames import UnsafeName, check_name
from processors.basecalling.dorado import (
    basecaller_command,
    dorado_version,
    run_basecaller,
)
from processors.basecalling.reads import split_calls
from runner.pipeline import JobError

TIMEOUT_S = 60
UPLOAD_TIMEOUT_S = 3600
RETRY_WAITS_S = (0.5, 1, 2, 5, 10, 30)


class EngineStopped(BaseException):
    """SIGTERM or Ctrl-C while Dorado runs: Dorado is killed, the job reported
    interrupted. A BaseException, so no `except Exception` swallows it."""


class JobTakenBack(BaseException):
    """The refinery took the job back (a keepalive was answered 409)."""


class RefineryError(Exception):
    """The refinery answered something this engine cannot act on."""


@dataclass
class Held:
    """A job the engine holds, as assign described it."""

    assignment: dict
    taken_back: str = ""

    @property
    def job_id(self) -> int:
        return int(self.assignment["job"])


@dataclass
class EngineStats:
    succeeded: int = 0
    failed: int = 0
    rejected: int = 0
    lost: int = 0
    log: list[str] = field(default_factory=list)


class Engine:
    """One engine process. `say` prints a line for the operator."""

    def __init__(
        self,
        server: str,
        token: str,
        name: str,
        work_dir: Path,
        dorado: str,
        batch_size: int = 1,
        poll_s: float = 5.0,
        say: Callable[[str], None] = print,
    ) -> None:
        self.base = server.rstrip("/") + f"/api/engines/{name}"
        self.headers = {"Authorization": f"Token {token}"}
        self.name, self.work_dir, self.dorado = name, Path(work_dir), dorado
        self.batch_size, self.poll_s, self.say = batch_size, poll_s, say
        self.session = requests.Session()
        self.held: dict[int, Held] = {}
        self.lock = threading.Lock()
        self.stopping = ""
        self.in_dorado: int | None = None  # the job whose Dorado runs now
        self.report_every_s = 15.0
        self.wake = threading.Event()
        self.stats = EngineStats()
        self.version = ""

    # --- HTTP ---------------------------------------------------------------------------------

    def post(self, session: requests.Session, url: str, retry: bool = True, **kwargs):
        """POST with the engine's token; connection failures are tried again with
        growing waits (the refinery may be restarting) unless `retry` is false."""
        waits = list(RETRY_WAITS_S) if retry else []
        while True:
            try:
                return session.post(
                    url, headers=self.headers, timeout=kwargs.pop("timeout", TIMEOUT_S), **kwargs
                )
            except requests.ConnectionError as error:
                if not waits or self.stopping:
                    raise RefineryError(f"cannot reach the refinery at {url}: {error}") from None
                time.sleep(waits.pop(0))

    # --- the loop -----------------------------------------------------------------------------

    def run(self, until_idle: bool = False, on_job: Callable[[], None] | None = None) -> None:
        """Ask for work and do it until stopped (or, `until_idle`, until none is left)."""
        binary = dorado_path_of(self.dorado)
        self.version = dorado_version(binary)
        self.dorado = binary
        self.say(f"engine {self.name}: Dorado {self.version} at {binary}; asking {self.base}")
        beating = threading.Thread(target=self.keep_alive, name="keepalives", daemon=True)
        beating.start()
        try:
            while not self.stopping:
                assignments = self.assign()
                if not assignments:
                    if until_idle:
                        break
                    self.wake.wait(self.poll_s)
                    continue
                for assignment in assignments:
                    with self.lock:
                        self.held[int(assignment["job"])] = Held(assignment)
                for assignment in assignments:
                    held = self.held[int(assignment["job"])]
                    if self.stopping:
                        self.complete_failed(held, f"engine stopped ({self.stopping})", True)
                    else:
                        self.run_job(held)
                    with self.lock:
                        self.held.pop(held.job_id, None)
                    if on_job is not None:
                        on_job()
        finally:
            self.stopping = self.stopping or "done"
            self.wake.set()
            beating.join(timeout=5)
        counts = self.stats
        self.say(
            f"engine {self.name}: {counts.succeeded} job(s) basecalled, {counts.failed} failed, "
            f"{counts.rejected} rejected by the refinery, {counts.lost} taken back; stopped"
        )

    def assign(self) -> list[dict]:
        answer = self.post(
            self.session,
            f"{self.base}/assign",
            json={"batch_size": self.batch_size, "version": f"dorado {self.version}"[:64]},
        )
        if answer.status_code == 204:
            return []
        if answer.status_code != 200:
            raise RefineryError(f"assign was answered {answer.status_code}: {answer.text[:300]}")
        body = answer.json()
        self.report_every_s = float(body.get("report_every_s") or 15)
        return list(body["jobs"])

    def keep_alive(self) -> None:
        """Send each held job's keepalive every report-back period (own session:
        a requests.Session is not shared between threads)."""
        session = requests.Session()
        while not self.stopping:
            with self.lock:
                held = list(self.held.values())
            for job in held:
                try:
                    answer = self.post(session, job.assignment["keepalive"], retry=False)
                except RefineryError:
                    continue  # the refinery is away; the lease covers a short outage
                if answer.status_code == 409 and not job.taken_back:
                    job.taken_back = answer.json().get("detail", "taken back")
                    if self.in_dorado == job.job_id:
                        signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)
            self.wake.wait(self.report_every_s)

    def on_signal(self, signum, frame) -> None:
        """SIGTERM/SIGINT: stop; SIGUSR1 (from the keepalive thread): the job
        Dorado works on was taken back. Raised only while Dorado runs: the
        subprocess is killed on the way out; elsewhere the loop sees the flag."""
        if signum == signal.SIGUSR1:
            if self.in_dorado is not None:
                raise JobTakenBack()
            return
        self.stopping = signal.Signals(signum).name
        self.wake.set()
        if self.in_dorado is not None:
            raise EngineStopped()

    # --- one job ------------------------------------------------------------------------------

    def run_job(self, held: Held) -> None:
        job = held.assignment
        folder = self.work_dir / f"job-{held.job_id}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        started = time.monotonic()
        self.say(f"job {held.job_id}: {len(job['files'])} pod5 file(s), model {job['model']}")
        try:
            pod5 = self.fetch_inputs(job, folder)
            command = basecaller_command(
                self.dorado, job["model"], pod5, fastq=job["output"] == "fastq"
            )
            calls = folder / f"calls.{job['output']}"
            if held.taken_back:
                raise JobTakenBack()
            self.in_dorado = held.job_id
            try:
                result = run_basecaller(command, calls, folder / "dorado.log")
            finally:
                self.in_dorado = None
            outputs = {
                f["name"]: folder / "out" / name
                for f, name in zip(job["files"], job["outputs"], strict=True)
            }
            (folder / "out").mkdir()
            split_calls(calls, outputs)
            calls.unlink()
            report = {
                "success": "true",
                "dorado_version": self.version,
                "model": job["model"],
                "filtered": str(result.filtered or 0),
                "command": command,
            }
            if result.called is not None:
                report["basecalled"] = str(result.called)
            self.complete(held, report, list(outputs.values()), started)
        except JobTakenBack:
            self.stats.lost += 1
            self.say(f"job {held.job_id}: taken back by the refinery ({held.taken_back}); dropped")
        except EngineStopped:
            self.complete_failed(held, f"engine stopped ({self.stopping})", interrupted=True)
        except JobError as error:
            self.complete_failed(held, error.reason, no_retry=error.no_retry)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def fetch_inputs(self, job: dict, folder: Path) -> Path:
        """The folder Dorado reads: the ASSIGNED folder when this machine sees it
        (local storage, mounted here), else the files fetched from their URLs."""
        if job.get("folder"):
            assigned = Path(job["folder"])
            if assigned.is_dir():
                return assigned
            raise JobError(
                f"the refinery's folder {assigned} is not visible on engine {self.name}: mount "
                "REFINERY_ENGINE_ASSIGNED_DIR (and the temporary storage it links to) here at "
                "the same paths"
            )
        pod5 = folder / "pod5"
        pod5.mkdir()
        for item in job["files"]:
            try:
                name = check_name(item["name"], "a pod5 file's name")
            except UnsafeName as error:
                raise JobError(str(error), no_retry=True) from None
            download(item["url"], pod5 / name, item.get("sha256", ""))
        return pod5

    def complete(self, held: Held, report: dict, outputs: list[Path], started: float) -> None:
        handles = [path.open("rb") for path in outputs]
        try:
            files = [("outputs", (p.name, h)) for p, h in zip(outputs, handles, strict=True)]
            data = [(k, v) for k, v in report.items() if k != "command"]
            data += [("command", arg) for arg in report["command"]]
            answer = self.post(
                self.session,
                held.assignment["completed"],
                data=data,
                files=files,
                timeout=UPLOAD_TIMEOUT_S,
            )
        finally:
            for handle in handles:
                handle.close()
        took = time.monotonic() - started
        if answer.status_code == 200:
            self.stats.succeeded += 1
            self.say(f"job {held.job_id}: basecalled and recorded in {took:.1f} s")
        elif answer.status_code == 422:
            self.stats.rejected += 1
            self.say(f"job {held.job_id}: the refinery rejected the outputs: {detail(answer)}")
        else:
            self.stats.failed += 1
            self.say(f"job {held.job_id}: completion answered {answer.status_code}: "
                     f"{detail(answer)}")  # fmt: skip

    def complete_failed(
        self, held: Held, reason: str, interrupted: bool = False, no_retry: bool = False
    ) -> None:
        data = {
            "success": "false",
            "reason": reason[:2000],
            "interrupted": "true" if interrupted else "false",
            "no_retry": "true" if no_retry else "false",
        }
        try:
            answer = self.post(self.session, held.assignment["completed"], data=data)
        except RefineryError as error:
            self.say(f"job {held.job_id}: could not report its failure ({error}); the "
                     "refinery takes it back when its keepalives stop")  # fmt: skip
            return
        self.stats.failed += 1
        what = "interrupted" if interrupted else "failed"
        self.say(f"job {held.job_id}: {what}: {reason} (refinery: {answer.status_code})")


def dorado_path_of(dorado: str) -> str:
    found = shutil.which(dorado)
    if found is None:
        raise JobError(f"Dorado is not found here ({dorado!r}): install it, or pass --dorado")
    return found


def detail(answer: requests.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return answer.text[:300]
    return str(body.get("detail") or body)[:500] if isinstance(body, dict) else str(body)[:500]


def download(url: str, path: Path, sha256: str) -> None:
    """Fetch one pod5 file (a presigned URL) and check its SHA-256."""
    digest = hashlib.sha256()
    partial = path.with_name(f".{path.name}.partial")
    try:
        with requests.get(url, stream=True, timeout=TIMEOUT_S) as answer:
            if answer.status_code != 200:
                raise JobError(f"fetching {path.name} was answered {answer.status_code}")
            with partial.open("wb") as out:
                for chunk in answer.iter_content(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
    except requests.RequestException as error:
        raise JobError(f"cannot fetch {path.name}: {error}") from None
    if sha256 and digest.hexdigest() != sha256:
        partial.unlink(missing_ok=True)
        raise JobError(f"{path.name} does not match its SHA-256 after the download")
    partial.rename(path)
