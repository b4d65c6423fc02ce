"""Progress on a terminal for long-running commands (tqdm draws it); silent when
not a terminal, so logs get no progress bar noise. A job run in the foreground
writes into its log while the command echoes the log to a terminal: the
command sets REFINERY_PROGRESS=1 for it, and the bars reach that terminal."""

from __future__ import annotations

import os
import sys
from typing import TextIO

from tqdm import tqdm


class Progress:
    """`with Progress(total, "surveying") as p: p.advance()` draws a one-line bar
    on stderr when it is a terminal, at most ten times a second."""

    def __init__(self, total: int | None, label: str, stream: TextIO | None = None):
        self.total, self.label, self.done = total, label, 0
        stream = stream or sys.stderr
        shown = stream.isatty() or os.environ.get("REFINERY_PROGRESS") == "1"
        self.bar = tqdm(
            total=total or None, desc=label, file=stream, disable=not shown,
            mininterval=0.1 if stream.isatty() else 1.0, dynamic_ncols=True,
        )  # fmt: skip

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.bar.close()

    def advance(self, n: int = 1, note: str = "") -> None:
        self.done += n
        if note:
            self.bar.set_postfix_str(note[:40], refresh=False)
        self.bar.update(n)
