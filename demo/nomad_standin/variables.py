"""Nomad Variables: ``/v1/var/<path>`` (read, create or update, delete) and
``/v1/vars`` (list), as command/agent/variable_endpoint.go and
nomad/variables_endpoint.go answer them.

- ``PUT``/``POST /v1/var/<path>`` takes a ``structs.VariableDecrypted``
  (``{"Items": {...}}``; ``Namespace`` from the body, else the ``namespace`` query
  parameter, else ``default``) and answers the variable with its items and
  indexes. No items: 400 ``variable missing required Items object``. A variable
  Nomad's validation refuses (a path not matching ``^[a-zA-Z0-9-_~/]{1,128}$``,
  the reserved ``nomad/`` paths, over 64 KiB, the ``*`` namespace) answers 400 with
  the message wrapped twice in ``RPC Error:: 400,`` and the HTTP layer taking one
  off, as Nomad does. ``?cas=<index>`` writes only if the variable's ModifyIndex is
  that (0: does not exist yet), else 409 with the current variable.
- ``GET /v1/var/<path>``: the variable, or 404 ``variable not found``.
- ``DELETE /v1/var/<path>``: 204 without a body (also for a variable that does not
  exist); ``cas`` as above.
- ``GET /v1/vars?prefix=<p>``: the metadata (no items) of the variables under ``p``.

Writing a variable lets tasks whose templates waited for it start (see
:mod:`.templates`). With ACLs on, only the management token may write, and a
workload identity reads only what its implicit policy allows (:mod:`.acl`).

Simplifications: variable locks (``lock-acquire``, ``lock-release``, ``lock-renew``)
answer 400 saying the stand-in does not emulate them; blocking queries are ignored;
nothing is encrypted.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from .answers import _Raw
from .api_types import VARIABLE
from .go_json import decode, decode_body
from .go_text import HTTPError, go_quote
from .state import StandinState, _now

VARIABLE_PATH = re.compile(r"^[a-zA-Z0-9\-_~/]{1,128}$")
MAX_VARIABLE_SIZE = 65536
LOCK_OPERATIONS = ("lock-acquire", "lock-release", "lock-renew")


def validate_path(path: str) -> str | None:
    """structs.ValidatePath: the error, or None."""
    if not path:
        return "variable requires path"
    if not VARIABLE_PATH.match(path):
        return f"invalid path {go_quote(path)}"
    parts = path.split("/")
    if parts[0] != "nomad":
        return None
    if len(parts) == 1:
        return (
            '"nomad" is a reserved top-level directory path, but you may write variables to '
            '"nomad/jobs", "nomad/job-templates", "nomad/sentinel", or below'
        )
    if parts[1] in ("jobs", "sentinel") or (parts[1] == "job-templates" and len(parts) == 3):
        return None
    if parts[1] == "job-templates":
        return (
            '"nomad/job-templates" is a reserved directory path, but you may write variables '
            'at the level below it, for example, "nomad/job-templates/template-name"'
        )
    return (
        'only paths at "nomad/jobs" or "nomad/job-templates" and below are valid paths '
        'under the top-level "nomad" directory'
    )


def _rpc_400(message: str) -> HTTPError:
    """A validation failure as Nomad's HTTP layer shows it: the RPC wraps it twice in
    NewErrRPCCoded(400, ...) and the HTTP layer unwraps once."""
    return HTTPError(400, f"RPC Error:: 400,{message}")


class Variables(StandinState):
    """The variables endpoints of :class:`~.server.NomadStandin`."""

    def _variables_route(
        self, method: str, path: str, query: dict[str, str], body: bytes, caller: dict | None
    ) -> tuple[int, Any]:
        namespace = query.get("namespace") or "default"
        if path == "/v1/vars":
            if method != "GET":
                raise HTTPError(405, "Invalid method")
            return 200, self._list_variables(namespace, query.get("prefix", ""), caller)
        var_path = path[len("/v1/var/") :]
        if not var_path:
            raise HTTPError(400, "missing variable path")
        if method == "GET":
            with self._lock:
                if not self._may_read_variable(caller, namespace, var_path):
                    raise HTTPError(403, "Permission denied")
                variable = self._variables.get((namespace, var_path))
                if variable is None:
                    raise HTTPError(404, "variable not found")
                return 200, copy.deepcopy(variable)
        if method in ("PUT", "POST"):
            locks = [op for op in LOCK_OPERATIONS if op in query]
            if locks and query.get("cas"):
                raise HTTPError(400, "CAS can't be used with lock operations")
            if locks:
                raise HTTPError(400, "stand-in: variable locks are not emulated")
            return self._put_variable(var_path, namespace, body, query, caller)
        if method == "DELETE":
            return self._delete_variable(var_path, namespace, query, caller)
        raise HTTPError(400, "Invalid method")

    def _put_variable(
        self, path: str, namespace: str, body: bytes, query: dict[str, str], caller: dict | None
    ) -> tuple[int, Any]:
        given = decode(decode_body(body), VARIABLE)
        items = given.get("Items") or {}
        if not items:
            raise HTTPError(400, "variable missing required Items object")
        namespace = given.get("Namespace") or namespace
        cas = _cas(query)
        if caller is not None:  # the implicit policy only reads
            raise HTTPError(403, "Permission denied")
        if namespace == "*":
            raise _rpc_400('can not target wildcard ("*")namespace')
        if sum(len(k) + len(v) for k, v in items.items()) > MAX_VARIABLE_SIZE:
            raise _rpc_400("variables are limited to 64KiB in total size")
        error = validate_path(path)
        if error:
            raise _rpc_400(error)
        with self._lock:
            current = self._variables.get((namespace, path))
            if cas is not None and cas != (current["ModifyIndex"] if current else 0):
                return 409, copy.deepcopy(current) if current else _empty(namespace, path)
            index, now = self._next_index(), _now()
            variable = {
                "Namespace": namespace,
                "Path": path,
                "CreateIndex": current["CreateIndex"] if current else index,
                "CreateTime": current["CreateTime"] if current else now,
                "ModifyIndex": index,
                "ModifyTime": now,
                "Items": dict(items),
            }
            self._variables[(namespace, path)] = variable
            self._start_tasks_waiting_for_variables()
            self._cond.notify_all()
            return 200, copy.deepcopy(variable)

    def _delete_variable(
        self, path: str, namespace: str, query: dict[str, str], caller: dict | None
    ) -> tuple[int, Any]:
        cas = _cas(query)
        if caller is not None:
            raise HTTPError(403, "Permission denied")
        with self._lock:
            current = self._variables.get((namespace, path))
            if cas is not None and cas != (current["ModifyIndex"] if current else 0):
                return 409, copy.deepcopy(current) if current else _empty(namespace, path)
            self._variables.pop((namespace, path), None)
            self._next_index()
            return 204, _Raw(b"", "application/json")

    def _list_variables(self, namespace: str, prefix: str, caller: dict | None) -> list[dict]:
        with self._lock:
            found = [
                {k: v for k, v in variable.items() if k != "Items"}
                for (ns, path), variable in sorted(self._variables.items())
                if (namespace == "*" or ns == namespace)
                and path.startswith(prefix)
                and self._may_read_variable(caller, ns, path)
            ]
        return found

    def variable(self, path: str, namespace: str = "default") -> dict | None:
        """What GET /v1/var/<path> would answer, or None."""
        with self._lock:
            found = self._variables.get((namespace, path))
            return copy.deepcopy(found)


def _cas(query: dict[str, str]) -> int | None:
    if not query.get("cas"):
        return None
    text = query["cas"]
    if not text.isdigit():
        raise HTTPError(
            400, f'can not parse cas: strconv.ParseUint: parsing "{text}": invalid syntax'
        )
    return int(text)


def _empty(namespace: str, path: str) -> dict:
    """The zero-value conflict Nomad answers for a CAS on a variable that does not exist."""
    return {
        "Namespace": namespace,
        "Path": path,
        "CreateIndex": 0,
        "CreateTime": 0,
        "ModifyIndex": 0,
        "ModifyTime": 0,
    }
