"""The one error the converter raises for bad input: it names the file and what is wrong."""

from __future__ import annotations

from pathlib import Path


class ConversionError(ValueError):
    """The run folder or sample sheet cannot be converted; the message names the file
    (or sample sheet line) and says what is wrong with it."""

    def __init__(self, message: str, path: Path | str | None = None):
        self.path = str(path) if path is not None else None
        super().__init__(f"{path}: {message}" if path is not None else message)
