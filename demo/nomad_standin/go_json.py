"""Go's encoding/json, as Nomad decodes a request body into the api package's structs
(:mod:`.api_types`): unknown keys are dropped, keys match case-insensitively, a wrong
type is a 400 with Go's message.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from .go_text import HTTPError


class _GoNumber(float):
    """A JSON number that was not an integer literal; keeps its text for errors."""

    text = ""


def _parse_float(text: str) -> _GoNumber:
    n = _GoNumber(text)
    n.text = text
    return n


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def decode_body(body: bytes) -> Any:
    """``json.NewDecoder(req.Body).Decode``: the first JSON value; 400 if none."""
    if not body:
        raise HTTPError(400, "Request body is empty")
    text = body.decode("utf-8", errors="replace")
    start = len(text) - len(text.lstrip(" \t\r\n"))
    if start == len(text):
        raise HTTPError(400, "EOF")
    decoder = json.JSONDecoder(parse_float=_parse_float, parse_constant=_reject_constant)
    try:
        value, _end = decoder.raw_decode(text, start)
    except (json.JSONDecodeError, ValueError) as e:
        pos = getattr(e, "pos", start)
        if pos >= len(text):
            raise HTTPError(400, "unexpected EOF") from None
        raise HTTPError(
            400, f"invalid character {text[pos]!r} looking for beginning of value"
        ) from None
    return value


class Struct:
    """A Go struct type: field name to type; JSON keys match case-insensitively."""

    def __init__(self, go_name: str, fields: dict[str, Any]):
        self.go_name = go_name
        self.name = go_name.rsplit(".", 1)[-1]
        self.fields = fields
        self._folded = {k.lower(): k for k in fields}

    def match(self, key: str) -> str | None:
        if key in self.fields:
            return key
        return self._folded.get(key.lower())


STR = ("scalar", "string")
INT = ("scalar", "int")
UINT64 = ("scalar", "uint64")
BOOL = ("scalar", "bool")
DURATION = ("scalar", "time.Duration")
BYTES = ("bytes", "[]uint8")
ANY = ("any", "interface {}")


def list_of(t: Any) -> tuple:
    return ("list", t)


def map_of(t: Any) -> tuple:
    return ("map", t)


ANYLIST = list_of(ANY)


def _go_type(t: Any) -> str:
    if isinstance(t, Struct):
        return t.go_name
    kind = t[0]
    if kind == "list":
        inner = t[1]
        return "[]" + ("*" + inner.go_name if isinstance(inner, Struct) else _go_type(inner))
    if kind == "map":
        return "map[string]" + _go_type(t[1])
    return t[1]


def _json_kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, _GoNumber):
        return "number " + v.text
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _plain(v: Any) -> Any:
    if isinstance(v, _GoNumber):
        return float(v)
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


def _base64(value: str) -> bytes:
    cleaned = value.replace("\r", "").replace("\n", "")
    try:
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
        pos = next((i for i, c in enumerate(cleaned) if c not in alphabet), len(cleaned))
        raise HTTPError(400, f"illegal base64 data at input byte {pos}") from None


def decode(value: Any, t: Struct) -> dict:
    """Decode a JSON value into Go struct ``t`` the way encoding/json does: unknown
    keys are dropped, keys match case-insensitively, a wrong type is a 400."""
    if not isinstance(value, dict):
        if value is None:
            return {}
        raise HTTPError(
            400, f"json: cannot unmarshal {_json_kind(value)} into Go value of type {t.go_name}"
        )
    return _decode(value, t, t.name, [])


def _decode(v: Any, t: Any, struct_name: str, path: list[str]) -> Any:
    if v is None:
        return None

    def mismatch() -> HTTPError:
        return HTTPError(
            400,
            f"json: cannot unmarshal {_json_kind(v)} into Go struct field "
            f"{struct_name}.{'.'.join(path)} of type {_go_type(t)}",
        )

    if isinstance(t, Struct):
        if not isinstance(v, dict):
            raise mismatch()
        out: dict[str, Any] = {}
        for key, item in v.items():
            name = t.match(key)
            if name is not None:
                out[name] = _decode(item, t.fields[name], t.name, [*path, name])
        return out
    kind = t[0]
    if kind == "any":
        return _plain(v)
    if kind == "list":
        if not isinstance(v, list):
            raise mismatch()
        return [_decode(x, t[1], struct_name, path) for x in v]
    if kind == "map":
        if not isinstance(v, dict):
            raise mismatch()
        return {k: _decode(x, t[1], struct_name, path) for k, x in v.items()}
    if kind == "bytes":
        if isinstance(v, str):
            return _base64(v)
        if isinstance(v, list) and all(
            isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 256 for x in v
        ):
            return bytes(v)
        raise mismatch()
    go = t[1]
    if go == "string":
        if not isinstance(v, str):
            raise mismatch()
        return v
    if go == "bool":
        if not isinstance(v, bool):
            raise mismatch()
        return v
    # integers: int, uint64, time.Duration
    if isinstance(v, bool) or not isinstance(v, int):
        raise mismatch()
    if go == "uint64" and v < 0:
        raise HTTPError(
            400,
            f"json: cannot unmarshal number {v} into Go struct field "
            f"{struct_name}.{'.'.join(path)} of type uint64",
        )
    return v
