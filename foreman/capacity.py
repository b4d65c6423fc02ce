"""How many created jobs one Foreman pass may dispatch, per kind.

The room is computed once per pass from the database's count of dispatched,
unfinished jobs per kind (small partial-index reads) and the dispatcher's own
count (`Dispatcher.capacity()`, which on Nomad also sees work the database no
longer thinks is running), then spent as the pass dispatches.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from common.models import PausedKind
from runner.dispatch import Dispatcher
from runner.dispatch.outbox import dispatch_room, in_flight_counts

logger = logging.getLogger(__name__)


@dataclass
class Budget:
    counts: dict[str, int]
    dispatcher_in_flight: int = 0
    paused: set[str] = field(default_factory=set)

    @classmethod
    def measure(cls, dispatcher: Dispatcher) -> Budget:
        try:
            capacity = dispatcher.capacity()
            elsewhere = capacity.queued + capacity.running
        except Exception as error:  # the dispatcher's view is a refinement, not a need
            logger.warning("%s cannot say its capacity (%s): using the database's count",
                           dispatcher.name, error)  # fmt: skip
            elsewhere = 0
        return cls(
            counts=in_flight_counts(),
            dispatcher_in_flight=elsewhere,
            paused=PausedKind.paused_kinds(),
        )

    def room(self, kind: str) -> int:
        """How many jobs of `kind` may be dispatched now."""
        if kind in self.paused:
            return 0
        return dispatch_room(kind, self.counts, self.dispatcher_in_flight)

    def spend(self, kind: str) -> None:
        """One job of `kind` was dispatched."""
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if self.dispatcher_in_flight:
            self.dispatcher_in_flight += 1

    def release(self, kind: str) -> None:
        """One dispatched job of `kind` was failed by this pass (hung, lost, over its limit)."""
        self.counts[kind] = max(0, self.counts.get(kind, 0) - 1)
        self.dispatcher_in_flight = max(0, self.dispatcher_in_flight - 1)
