"""How Go and Nomad write things: durations, times, quoted strings, lists, error lists
and booleans, and :class:`HTTPError`, the plain-text answer Nomad gives for an error.
See ``reference/nomad-api.md``.
"""

from __future__ import annotations

import json
import time

SEC = 1_000_000_000
MINUTE = 60 * SEC
HOUR = 60 * MINUTE


class HTTPError(Exception):
    """An answer that is not 2xx: Nomad writes the message as plain text."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def go_quote(s: str) -> str:
    """Go's %q for the strings Nomad quotes."""
    return json.dumps(s, ensure_ascii=False)


def go_list(items: list[str]) -> str:
    """Go's %v of a []string: ``[a b]``."""
    return "[" + " ".join(items) + "]"


def multierror(errors: list[str]) -> str:
    """hashicorp/go-multierror's ListFormatFunc."""
    if len(errors) == 1:
        return f"1 error occurred:\n\t* {errors[0]}\n\n"
    points = "\n\t".join(f"* {e}" for e in errors)
    return f"{len(errors)} errors occurred:\n\t{points}\n\n"


def _frac(value: int, unit: int, digits: int) -> str:
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    return f"{whole}." + f"{frac:0{digits}d}".rstrip("0")


def go_duration(ns: int) -> str:
    """Go's time.Duration.String(): 15s, 24h0m0s, 1m30s, 500ms."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    u = abs(ns)
    if u < 1000:
        return f"{sign}{u}ns"
    if u < 1_000_000:
        return sign + _frac(u, 1000, 3) + "µs"
    if u < SEC:
        return sign + _frac(u, 1_000_000, 6) + "ms"
    hours, rest = divmod(u, HOUR)
    minutes, rest = divmod(rest, MINUTE)
    out = sign
    if hours:
        out += f"{hours}h"
    if hours or minutes:
        out += f"{minutes}m"
    return out + _frac(rest, SEC, 9) + "s"


def rfc3339(ns: int | None) -> str:
    """Go's time.Time in JSON (RFC 3339 with nanoseconds); the zero time if unset."""
    if not ns:
        return "0001-01-01T00:00:00Z"
    secs, frac = divmod(ns, SEC)
    out = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    if frac:
        out += "." + f"{frac:09d}".rstrip("0")
    return out + "Z"


_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def parse_go_bool(value: str) -> bool:
    """strconv.ParseBool (python-nomad sends Python's ``True``/``False``)."""
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f'strconv.ParseBool: parsing "{value}": invalid syntax')
