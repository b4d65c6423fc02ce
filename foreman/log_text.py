"""A job's log as people read it: progress-bar noise collapsed, the tail first."""

from __future__ import annotations

TAIL_LINES = 500


def collapse_progress(text: str) -> str:
    """Each line as it last looked: a line redrawn with carriage returns (salmon's
    and tqdm's progress bars) keeps only its last drawing."""
    lines = []
    for line in text.split("\n"):
        drawn = [part for part in line.split("\r") if part]
        lines.append(drawn[-1] if drawn else "")
    return "\n".join(lines)


def tail(text: str, lines: int | None = TAIL_LINES) -> tuple[str, int]:
    """The last `lines` lines of `text` (all when None) and how many it has."""
    every = text.splitlines(keepends=True)
    if lines is None or len(every) <= lines:
        return text, len(every)
    return "".join(every[-lines:]), len(every)
