"""Progress on a terminal for long-running commands; silent when not a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """`with Progress(total, "surveying") as p: p.advance()` draws a one-line bar
    on stderr when it is a terminal, at most ten times a second."""

    def __init__(self, total: int | None, label: str, stream: TextIO | None = None):
        self.total, self.label, self.done = total, label, 0
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.started = time.monotonic()
        self._last_draw = 0.0

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self._draw(force=True)
            self.stream.write("\n")
            self.stream.flush()

    def advance(self, n: int = 1, note: str = "") -> None:
        self.done += n
        if self.enabled:
            self._draw(note=note)

    def _draw(self, note: str = "", force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        elapsed = now - self.started
        if self.total:
            width = 30
            filled = int(width * self.done / self.total)
            bar = "#" * filled + "-" * (width - filled)
            text = f"{self.label} [{bar}] {self.done}/{self.total} {elapsed:5.0f}s"
        else:
            text = f"{self.label} {self.done} {elapsed:5.0f}s"
        if note:
            text += f" {note[:40]}"
        self.stream.write("\r" + text.ljust(100)[:100])
        self.stream.flush()
