"""Watching folders that instruments write to, and surveying them when what they
hold changes (`manage.py watch <source> DIR …`).

A source that can be watched registers a *scanner*: a function that looks at
one watched folder, without the database, and says what it sees (`Seen`: each
run's state, when a marker will be old enough, which folders to watch). The
watcher

- reacts within seconds to inotify events (watchdog) on each watched folder and
  on each run folder in it (not recursively: the markers sit at a run folder's
  top, while the base calls below it change all the time);
- rescans every `interval` seconds anyway, because NFS delivers no inotify
  event for a file written by another machine;
- wakes when a marker will have passed the grace period, to look again then;
- runs a survey (a SurveyJob, here under supervision like `manage.py survey`, or
  queued with `queue=True`) whenever what it sees differs from what the last
  survey saw, so an unchanged folder costs no job;
- survives a watched folder that disappears (its watch is dropped, and made
  again when it comes back) and stops cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from fnmatch import fnmatch
from pathlib import Path
from typing import TextIO

from django.db import DatabaseError, connections
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from common.models import JobState, SurveyJob
from common.secrets import redact
from runner.dispatch import send_job
from runner.foreground import supervise_echoing
from runner.lifecycle import start_here
from runner.pipeline import JobError
from runner.registry import surveyor_class


@dataclass(frozen=True)
class Seen:
    """One thing a scanner saw in a watched folder."""

    key: str  # the run (or entry) it is about
    state: str  # "sequencing", "waiting", "complete", "failed", "problem", …
    detail: str  # for the terminal
    signature: str = ""  # what a survey would record of it: a change here calls for one
    ready_at: float | None = None  # when to look again (a marker's grace period ends)
    watch: Path | None = None  # a folder whose top to watch for its markers


Scanner = Callable[[Path], list[Seen]]
# A folder watched because it may become a run (its RunInfo.xml is not there yet).
NOT_A_RUN = "not a run (yet)"
WAITING_STATES = ("sequencing", "waiting", "problem")
# How long to wait before surveying again when the database is unavailable.
DATABASE_RETRY_S = 10.0
# How often to look for a watched folder that has gone (no inotify watch can wait for it).
MISSING_POLL_S = 2.0


@dataclass(frozen=True)
class WatchSource:
    scanner: Scanner
    marker_names: frozenset[str]  # names (globs) of the files whose events wake the watcher
    paths_option: str = "dirs"  # the survey's option that takes the folders


_SCANNERS: dict[str, WatchSource] = {}


def register_scanner(
    source: str, scanner: Scanner, marker_names: frozenset[str], paths_option: str = "dirs"
) -> None:
    """`manage.py watch <source>` looks at folders with `scanner` and surveys with
    the source's surveyor (its options, with the folders as `paths_option`)."""
    _SCANNERS[source] = WatchSource(scanner, frozenset(marker_names), paths_option)


def watch_sources() -> dict[str, WatchSource]:
    return dict(_SCANNERS)


class Wake(FileSystemEventHandler):
    """Sets `event` when a marker (or a folder) appears, moves or goes."""

    def __init__(self, event: threading.Event, marker_names: frozenset[str]):
        self.event, self.marker_names = event, marker_names
        self.last: str = ""

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        paths = [event.src_path, getattr(event, "dest_path", "")]
        for path in paths:
            path = os.fsdecode(path or b"")
            name = os.path.basename(path)
            if path and (event.is_directory or any(fnmatch(name, p) for p in self.marker_names)):
                self.last = f"{event.event_type} {path}"
                self.event.set()
                return


@dataclass
class View:
    """What one scan of every watched folder saw."""

    seen: list[Seen] = field(default_factory=list)
    missing: list[Path] = field(default_factory=list)

    def signature(self) -> tuple:
        return (
            tuple(sorted((s.key, s.signature or s.state) for s in self.seen)),
            tuple(map(str, self.missing)),
        )

    def next_ready(self, now: float) -> float | None:
        times = [s.ready_at for s in self.seen if s.ready_at is not None and s.ready_at > now]
        return min(times) if times else None


class Watcher:
    def __init__(
        self,
        source: str,
        dirs: list[Path],
        options: dict,
        interval: float,
        queue: bool = False,
        out: TextIO | None = None,
    ):
        self.source, self.registered = source, _SCANNERS[source]
        self.dirs = [Path(d).expanduser().absolute() for d in dirs]
        self.options, self.interval, self.queue = options, interval, queue
        self.out = out
        self.wake = threading.Event()
        self.stopping: list[str] = []
        self.handler = Wake(self.wake, self.registered.marker_names)
        self.observer = Observer()
        self.watches: dict[Path, tuple[object, tuple[int, int]]] = {}
        self.surveyed: tuple | None = None
        self.shown: str = ""
        self.surveys = 0

    # --- the loop -----------------------------------------------------------------------------

    def run(self, max_surveys: int | None = None) -> None:
        """Watch until SIGTERM or SIGINT (or `max_surveys` surveys, for tests)."""
        previous = {
            sig: signal.signal(sig, self.request_stop) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        self.observer.start()
        next_rescan = 0.0
        try:
            while not self.stopping:
                now = time.time()
                if now >= next_rescan:
                    next_rescan = now + self.interval
                view = self.scan()
                self.sync_watches(view)
                retry_at = None
                try:
                    if view.signature() != self.surveyed and self.survey(view):
                        self.surveyed = view.signature()
                except DatabaseError as error:  # an outage must not end the watch
                    self.say(f"database unavailable ({redact(str(error)).strip()[:200]}); "
                             f"surveying again in {DATABASE_RETRY_S:g} s")  # fmt: skip
                    connections.close_all()
                    retry_at = time.time() + DATABASE_RETRY_S
                if self.stopping or (max_surveys is not None and self.surveys >= max_surveys):
                    break
                ready = view.next_ready(time.time())
                wake_at = min(next_rescan, ready + 0.5 if ready else next_rescan, retry_at or 1e18)
                if view.missing:  # nothing watches for its return: look again soon
                    wake_at = min(wake_at, time.time() + MISSING_POLL_S)
                self.show(view, ready, next_rescan)
                self.wake.wait(max(0.0, wake_at - time.time()))
                if self.wake.is_set():
                    self.wake.clear()
                    time.sleep(0.2)  # let a burst of events settle into one scan
                    self.wake.clear()
        finally:
            self.observer.stop()
            self.observer.join(timeout=5)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.say(f"watch {self.source}: stopped ({self.stopping[0] if self.stopping else 'done'})")

    def request_stop(self, signum: int, frame: object) -> None:
        self.stopping.append(signal.Signals(signum).name)
        self.wake.set()

    # --- looking --------------------------------------------------------------------------------

    def scan(self) -> View:
        view = View()
        for root in self.dirs:
            if not root.is_dir():
                view.missing.append(root)
                continue
            try:
                view.seen.extend(self.registered.scanner(root))
            except OSError as error:  # vanished or unreadable between the check and the scan
                view.seen.append(Seen(str(root), "problem", error.strerror or str(error)))
        return view

    def sync_watches(self, view: View) -> None:
        """Watch each folder that exists (the roots and the runs' folders) exactly
        once; drop the watches of folders that went, and renew those of folders
        that were replaced (a new folder by the same name is a new inode)."""
        wanted = {root for root in self.dirs if root.is_dir()}
        wanted.update(s.watch for s in view.seen if s.watch is not None)
        for path in list(self.watches):
            watch, identity = self.watches[path]
            if path not in wanted or identity_of(path) != identity:
                with contextlib.suppress(KeyError, OSError):  # gone with its folder
                    self.observer.unschedule(watch)
                del self.watches[path]
        for path in wanted - set(self.watches):
            identity = identity_of(path)
            if identity is None:
                continue
            try:
                watch = self.observer.schedule(self.handler, str(path), recursive=False)
            except OSError as error:
                self.say(f"cannot watch {path}: {error.strerror or error}; rescans will see it")
                continue
            self.watches[path] = (watch, identity)

    # --- surveying -----------------------------------------------------------------------------

    def survey(self, view: View) -> bool:
        """Survey the folders that exist now. True when the survey ran to an end
        (succeeded, or failed for what it found), so the same view is not
        surveyed again; False when another attempt may do better."""
        present = [str(root) for root in self.dirs if root.is_dir()]
        if not present:
            return True
        surveyor = surveyor_class(self.source)
        options = {**self.options, self.registered.paths_option: present}
        try:
            parameters = surveyor.parameters_from_options(options)
        except JobError as error:
            self.say(f"cannot survey now: {error.reason}")
            return False
        job = SurveyJob.objects.create(source=self.source, parameters=parameters)
        self.surveys += 1
        if self.queue:
            send_job(job)
            self.say(f"queued survey job {job.pk}")
            return True
        start_here(job)
        self.supervise(job)
        job.refresh_from_db()
        return job.state == JobState.SUCCEEDED or job.no_retry

    def supervise(self, job: SurveyJob) -> None:
        """Run the survey in a supervised child (heartbeat, runtime limit, its log
        kept), echoing its output, as `manage.py survey` does; this process's own
        signal handlers stay in place, so a stop is never missed: it stops the
        survey (marked interrupted, its retry does not count) and the watch."""
        supervise_echoing(job, f"watch {self.source}", self.out or sys.stdout, self.stopping)

    # --- the terminal --------------------------------------------------------------------------

    def show(self, view: View, ready: float | None, next_rescan: float) -> None:
        """What the watcher waits for, written when it changes."""
        lines = []
        for root in view.missing:
            lines.append(f"  {root}: not there (waiting for it to come back)")
        runs = [s for s in view.seen if s.state != NOT_A_RUN]
        for seen in sorted(runs, key=lambda s: (s.state, s.key)):
            if seen.state in WAITING_STATES:
                detail = seen.detail
                if (
                    seen.state == "waiting" and seen.ready_at and " is " in detail
                ):  # say when, not how old
                    detail = f"{detail.split(' is ')[0]} old enough at {clock(seen.ready_at)}"
                lines.append(f"  {seen.key}: {seen.state}, {detail}")
        done = sum(1 for s in runs if s.state not in WAITING_STATES)
        head = (
            f"watch {self.source}: {len(runs)} run(s) in {len(self.dirs)} folder(s), "
            f"{done} finished"
        )
        text = "\n".join([head, *lines])
        if text != self.shown:
            self.shown = text
            self.say(text)
        when = [f"next rescan at {clock(next_rescan)}"]
        if ready is not None:
            when.insert(0, f"next marker ready at {clock(ready)}")
        self.say("  " + ", ".join(when), only_terminal=True)

    def say(self, text: str, only_terminal: bool = False) -> None:
        out = self.out
        if out is None or (only_terminal and not out.isatty()):
            return
        out.write(text + "\n")
        out.flush()


def identity_of(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino)


def clock(moment: float) -> str:
    return datetime.fromtimestamp(moment).strftime("%H:%M:%S")
