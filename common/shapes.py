"""The shape of an answer from a source, checked before anything reads it.

A shape is written as the answer looks:

    GENOME = {"name": Text("a production name", r"[a-z0-9_]+"), "taxonomy_id": Maybe(Whole())}
    check(answer, ListOf(GENOME))

- a dict: an object with (at least) these keys; `Maybe(shape)` marks a key that
  may be missing or null; other keys are ignored;
- `ListOf(shape)`: a list whose every item has that shape;
- `Text(name, pattern, max_length)`: a string, matching `pattern` in full;
- `Whole()`: a whole number, or a string of digits (sources write both).

`check` raises ShapeError naming the field (`[3].name`, `species[0].taxon_id`)
and what is wrong with it, without quoting the value: a reason that says what
was wrong, never what the source sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


class ShapeError(ValueError):
    def __init__(self, where: str, problem: str):
        self.where = where or "the answer"
        self.problem = problem
        super().__init__(f"{self.where} {problem}")


@dataclass(frozen=True)
class Text:
    name: str = "a string"  # what the value must be, in words
    pattern: str | None = None
    max_length: int = 10_000


@dataclass(frozen=True)
class Whole:
    name: str = "a whole number"


@dataclass(frozen=True)
class ListOf:
    item: Any


@dataclass(frozen=True)
class Maybe:
    shape: Any


def describe(value: object) -> str:
    """What a value is, in words (`a whole number`), never the value itself."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int):
        return "a whole number"
    if isinstance(value, float):
        return "a decimal number"
    if isinstance(value, str):
        return "a string" if value else "an empty string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def check(value: object, shape: Any, where: str = "") -> None:
    """Raise ShapeError unless `value` has `shape`."""
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            raise ShapeError(where, f"is {describe(value)}, not an object")
        for key, field in shape.items():
            path = f"{where}.{key}" if where else key
            item = value.get(key)
            if isinstance(field, Maybe):
                if item is not None:
                    check(item, field.shape, path)
            elif item is None:
                raise ShapeError(path, "is null" if key in value else "is missing")
            else:
                check(item, field, path)
    elif isinstance(shape, ListOf):
        if not isinstance(value, list):
            raise ShapeError(where, f"is {describe(value)}, not a list")
        for index, item in enumerate(value):
            check(item, shape.item, f"{where}[{index}]")
    elif isinstance(shape, Text):
        if not isinstance(value, str):
            raise ShapeError(where, f"is {describe(value)}, not {shape.name}")
        if len(value) > shape.max_length:
            raise ShapeError(where, f"is longer than {shape.max_length} characters")
        if shape.pattern is not None and not re.fullmatch(shape.pattern, value):
            raise ShapeError(where, f"is not {shape.name}")
    elif isinstance(shape, Whole):
        whole = isinstance(value, int) and not isinstance(value, bool)
        digits = isinstance(value, str) and value.isascii() and value.isdigit()
        if not (whole or (digits and len(value) <= 18)):
            raise ShapeError(where, f"is {describe(value)}, not {shape.name}")
    else:
        raise TypeError(f"not a shape: {shape!r}")
