"""File names from outside are input, never paths.

A source names its files (a line of a `CHECKSUMS`, a file in a folder, a field
of an answer); the refinery builds local paths and storage keys from some of
those names. Every such name must be one plain name: the check below is the one
rule, applied when a survey records a file and again wherever a path or key is
built from a stored name.
"""

from __future__ import annotations

import unicodedata

MAX_NAME_BYTES = 255  # what Linux, macOS and S3 key segments all take


class UnsafeName(ValueError):
    """A name that is not one plain file name; the message says why."""


def name_problem(name: object) -> str | None:
    """Why `name` is not one plain file name, or None when it is one."""
    if not isinstance(name, str):
        return f"it is a {type(name).__name__}, not text"
    if not name:
        return "it is empty"
    if name in (".", ".."):
        return "it names a folder, not a file"
    for separator in ("/", "\\"):
        if separator in name:
            return f"it contains {separator!r}"
    if name.startswith("."):
        return "it starts with '.'"
    if (character := control_character(name)) is not None:
        return f"it contains the control character {character!r}"
    if name != name.strip():
        return "it starts or ends with white space"
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "it is not valid Unicode"
    if size > MAX_NAME_BYTES:
        return f"it is longer than {MAX_NAME_BYTES} bytes ({size})"
    return None


def control_character(text: str) -> str | None:
    """The first character of `text` that a terminal or a log would act on, or
    not show (controls, format characters such as right-to-left overrides,
    line and paragraph separators, lone surrogates); None when there is none."""
    for character in text:
        if unicodedata.category(character) in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            return character
    return None


def check_name(name: object, what: str = "file name") -> str:
    """`name` itself when it is one plain file name; raises UnsafeName saying
    what is wrong with it otherwise (`what` names it in the message)."""
    problem = name_problem(name)
    if problem is not None:
        raise UnsafeName(f"{what} {shorten(name)} is not one plain file name: {problem}")
    return name  # type: ignore[return-value]


def shorten(value: object, limit: int = 200) -> str:
    """`value`'s repr, cut to `limit` characters: a hostile name may be huge."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 20]}…{text[-12:]} ({len(str(value))} characters)"
