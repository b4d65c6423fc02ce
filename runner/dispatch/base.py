"""The interface every dispatcher offers."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from django.conf import settings
from django.utils.module_loading import import_string

from common.models import Job

DISPATCHERS = {
    "local": "runner.dispatch.local.LocalDispatcher",
    "nomad": "runner.nomad.dispatcher.NomadDispatcher",
}


class DispatchError(Exception):
    """The dispatcher could not take the job; the message says why."""


class DispatchStatus(StrEnum):
    """What the dispatcher knows of a job's dispatched work."""

    PENDING = "pending"  # accepted, not yet running
    RUNNING = "running"
    COMPLETE = "complete"  # the work ended and exited cleanly
    FAILED = "failed"  # the work ended badly
    LOST = "lost"  # the work was lost with its machine
    GONE = "gone"  # the dispatcher no longer knows this work


@dataclass(frozen=True)
class Capacity:
    queued: int
    running: int


@dataclass(frozen=True)
class WorkEnd:
    """How a job's dispatched work ended, as the dispatcher saw it: what happened
    (an exit code, a signal, a driver's or a template's failure), the exit code if
    any, and the end of its error output with secrets masked."""

    description: str
    exit_code: int | None = None
    output_tail: str = ""

    def reason(self, what: str) -> str:
        """A failure reason: `what` happened, and how the work ended."""
        reason = f"{what}: {self.description}"
        if self.output_tail:
            reason += f"; its stderr ends:\n{self.output_tail}"
        return reason


class Dispatcher(ABC):
    name: str

    @abstractmethod
    def send(self, job: Job) -> str:
        """Hand the job over; return its dispatch id. Raise DispatchError."""

    @abstractmethod
    def status(self, job: Job) -> DispatchStatus:
        """What has become of the job's dispatched work."""

    @abstractmethod
    def stop(self, job: Job) -> None:
        """Stop the job's work, wherever it runs."""

    @abstractmethod
    def capacity(self) -> Capacity:
        """How many dispatched jobs wait and run now."""

    def work_end(self, job: Job) -> WorkEnd | None:
        """How the job's dispatched work ended, when it has ended and the dispatcher
        can tell (a local worker records that itself), or None."""
        return None

    def unplaceable(self, job: Job) -> str | None:
        """Why a queued job can never start where it was sent (for example, no
        node has the memory it asks for), or None. Dispatchers that cannot tell
        say None."""
        return None


@lru_cache(maxsize=4)
def _dispatcher(name: str) -> Dispatcher:
    return import_string(DISPATCHERS[name])()


def get_dispatcher() -> Dispatcher:
    """The dispatcher `REFINERY_DISPATCHER` names."""
    return _dispatcher(settings.REFINERY_DISPATCHER)
