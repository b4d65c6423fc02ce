"""Progress on a terminal for long-running commands (tqdm draws it); silent when
not a terminal, so logs get no progress bar noise."""

from __future__ import annotations

import sys
from typing import TextIO

from tqdm import tqdm


class Progress:
    """`with Progress(total, "surveying") as p: p.advance()` draws a one-line bar
    on stderr when it is a terminal, at most ten times a second."""

    def __init__(self, total: int | None, label: str, stream: TextIO | None = None):
        self.total, self.label, self.done = total, label, 0
        stream = stream or sys.stderr
        self.bar = tqdm(
            total=total or None, desc=label, file=stream, disable=not stream.isatty(),
            mininterval=0.1, dynamic_ncols=True,
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
