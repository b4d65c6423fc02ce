"""A task's ``Templates``, rendered as a Nomad client renders them before the task
starts (client/allocrunner/taskrunner/template): each is written to its
``DestPath`` in the task directory with its ``Perms``, and a template with
``Envvars`` is read back as environment variables (hashicorp/go-envparse), which
override the task's ``Env``.

- A template whose ``nomadVar`` names a variable that does not exist blocks the
  task: it stays pending with a ``Template`` event ``Missing:
  nomad.var.block(<path>@<namespace>.global)`` and starts once the variable is
  written.
- With ACLs on, the template reads as the task's workload identity: a variable its
  implicit policy does not cover fails the task.
- A template that cannot be rendered fails the task with a ``Killing`` event
  (``FailsTask``) ``Template failed: ...``, as Nomad does.

Simplifications: the stand-in renders only this part of consul-template's language:
text, ``{{ with nomadVar "<path>" }} ... {{ end }}``, ``{{ .KEY }}`` and ``{{ .KEY |
toJSON }}`` inside it, and the ``{{-``/``-}}`` trim markers; anything else (and
``SourcePath``) fails the task saying so. Templates are rendered once: a variable
written later does not re-render them (no ``ChangeMode``). The ``Missing`` event is
emitted at once, not after Nomad's 3 s event rate limit.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from .state import StandinState, _Alloc, _event, _now, _Task

_ACTION = re.compile(r"\{\{(-\s)?\s*(.*?)\s*(\s-)?\}\}", re.S)
_WITH_VAR = re.compile(r'^with\s+nomadVar\s+"([^"]*)"$')
_FIELD = re.compile(r"^\.([A-Za-z_][A-Za-z0-9_]*)(\s*\|\s*toJSON)?$")
_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}
_JSON_VALID_ESCAPES = set('"\\/bfnrtu')


class TemplateError(Exception):
    """The template cannot be rendered; the message is what Nomad's event says."""


class MissingVariable(Exception):
    """A template's variable does not exist (yet)."""

    def __init__(self, path: str):
        super().__init__(path)
        self.path = path


def go_quote(value: str) -> str:
    """strconv.Quote, which NomadVarItem.MarshalJSON uses (``%q``)."""
    out = ['"']
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == " " or ch.isprintable():
            out.append(ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return "".join(out) + '"'


def to_json_item(value: str) -> str:
    """consul-template's ``toJSON`` of a NomadVarItem: json.Marshal of its
    MarshalJSON (``%q``), which must be valid JSON and is HTML-escaped."""
    quoted = go_quote(value)
    escapes = re.findall(r"\\(.)", quoted)
    bad = next((c for c in escapes if c not in _JSON_VALID_ESCAPES), None)
    if bad is not None:
        raise TemplateError(
            "toJSON: json: error calling MarshalJSON for type dependency.NomadVarItem: "
            f"invalid character {bad!r} in string escape code"
        )
    for ch, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        quoted = quoted.replace(ch, escaped)
    return quoted


def render(
    text: str, read_variable: Callable[[str], dict[str, str]], err_missing_key: bool = False
) -> str:
    """Render ``text``; ``read_variable(path)`` returns the variable's items or raises
    MissingVariable."""
    out: list[str] = []
    scope: dict[str, str] | None = None
    skipping = depth = 0
    pos = 0
    for match in _ACTION.finditer(text):
        chunk = text[pos : match.start()]
        if match.group(1):
            chunk = chunk.rstrip(" \t\r\n")
        if not skipping:
            out.append(chunk)
        pos = match.end()
        if match.group(3):
            rest = text[pos:]
            pos += len(rest) - len(rest.lstrip(" \t\r\n"))
        action = match.group(2)
        with_var = _WITH_VAR.match(action)
        if with_var:
            depth += 1
            items = read_variable(with_var.group(1)) if with_var.group(1) else {}
            if skipping or not items:
                skipping += 1
            else:
                scope = items
            continue
        if action == "end":
            if depth == 0:
                raise TemplateError("template: unexpected {{end}}")
            depth -= 1
            if skipping:
                skipping -= 1
            else:
                scope = None
            continue
        field = _FIELD.match(action)
        if field is None:
            raise TemplateError(f"stand-in: cannot render the template action {{{{ {action} }}}}")
        if skipping:
            continue
        if scope is None:
            raise TemplateError(f"stand-in: {{{{ {action} }}}} outside a with nomadVar block")
        key = field.group(1)
        if key not in scope:
            if field.group(2) or err_missing_key:
                raise TemplateError(
                    f'template: executing at <.{key}>: map has no entry for key "{key}"'
                )
            out.append("<no value>")
            continue
        out.append(to_json_item(scope[key]) if field.group(2) else scope[key])
    if depth:
        raise TemplateError("template: unexpected EOF")
    out.append(text[pos:])
    return "".join(out)


def parse_env(text: str) -> dict[str, str]:
    """hashicorp/go-envparse.Parse (empty values are left out, as its Next does)."""
    env = {}
    for number, line in enumerate(text.split("\n"), start=1):
        try:
            pair = _parse_env_line(line)
        except ValueError as error:
            raise TemplateError(f"error on line {number}: {error}") from None
        if pair and pair[1]:
            env[pair[0]] = pair[1]
    return env


def _parse_env_line(line: str) -> tuple[str, str] | None:
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    if "=" not in line:
        raise ValueError("missing =")
    key, value = (part.strip() for part in line.split("=", 1))
    if len(key) > len("export ") and key.startswith("export "):
        key = key[len("export ") :]
    if not key:
        raise ValueError("empty key")
    if not (key[0].isascii() and (key[0].isalpha() or key[0] == "_")):
        raise ValueError(f"key must start with [A-Za-z_] but found {key[0]!r}")
    if not re.fullmatch(r"[A-Za-z0-9/_.]*", key[1:]):
        raise ValueError("key characters must be [A-Za-z0-9/_.]")
    out, mode, last = [], "normal", 0
    chars = iter(range(len(value)))
    for i in chars:
        c = value[i]
        if ord(c) < 32:
            raise ValueError(f"0x{ord(c):02x} is an invalid value character")
        if mode == "normal":
            if c == '"':
                mode = "double"
            elif c == "'":
                mode = "single"
            elif c == "#":
                return key, "".join(out[:last])
            else:
                out.append(c)
                if c not in " \t":
                    last = len(out)
        elif mode == "double":
            if c == '"':
                mode = "normal"
            elif c == "\\":
                mode = "escape"
            else:
                out.append(c)
                last = len(out)
        elif mode == "escape":
            simple = {
                '"': '"',
                "\\": "\\",
                "/": "/",
                "b": "\b",
                "f": "\f",
                "r": "\r",
                "n": "\n",
                "t": "\t",
            }
            if c in simple:
                out.append(simple[c])
            elif c == "u":
                digits = value[i + 1 : i + 5]
                if len(digits) < 4 or not re.fullmatch(r"[0-9a-fA-F]{4}", digits):
                    raise ValueError("incomplete hex sequence")
                out.append(chr(int(digits, 16)))
                for _ in range(4):
                    next(chars)
            else:
                raise ValueError(f"invalid escape sequence: {c!r}")
            last = len(out)
            mode = "double"
        else:  # single
            if c == "'":
                mode = "normal"
            else:
                out.append(c)
                last = len(out)
    if mode != "normal":
        unmatched = {"double": 'unmatched "', "single": "unmatched '"}
        raise ValueError(unmatched.get(mode, "incomplete escape sequence"))
    return key, "".join(out)


class TemplateRendering(StandinState):
    """The template methods of :class:`~.server.NomadStandin` (under ``_lock``)."""

    def _render_templates(self, a: _Alloc, t: _Task) -> dict[str, str] | None:
        """Render the task's templates; the environment they give it. None when
        the task cannot start now: it waits for a variable, or it failed."""
        env: dict[str, str] = {}
        caller = self._task_caller(a, t)
        task_dir = os.path.join(a.dir, t.name)
        for template in t.spec.get("Templates") or []:

            def read_variable(path: str, template: dict = template) -> dict[str, str]:
                if not self._may_read_variable(caller, a.ns, path):
                    raise TemplateError(
                        f"nomad.var.block({path}@{a.ns}.global): Unexpected response code: "
                        "403 (Permission denied)"
                    )
                variable = self._variables.get((a.ns, path))
                if variable is None:
                    raise MissingVariable(path)
                return variable["Items"]

            try:
                if template.get("SourcePath"):
                    raise TemplateError("stand-in: templates with a SourcePath are not emulated")
                text = render(
                    template["EmbeddedTmpl"], read_variable, template.get("ErrMissingKey", False)
                )
                target = os.path.join(task_dir, template["DestPath"])
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "w") as f:
                    f.write(text)
                os.chmod(target, int(template.get("Perms") or "0644", 8))
                if template.get("Envvars"):
                    env.update(parse_env(text))
            except MissingVariable as missing:
                t.waiting_for_variable = True
                t.events.append(
                    _event("Template", f"Missing: nomad.var.block({missing.path}@{a.ns}.global)")
                )
                self._alloc_updated(a)
                return None
            except TemplateError as error:
                t.events.append(
                    _event(
                        "Killing",
                        f"Template failed: {error}",
                        FailsTask=True,
                        Details={"fails_task": "true"},
                    )
                )
                t.state, t.failed, t.finished_at = "dead", True, _now()
                self._alloc_updated(a)
                return None
        return env

    def _start_tasks_waiting_for_variables(self) -> None:
        """A variable was written: tasks whose templates waited try again."""
        for a in list(self._allocs.values()):
            if a.frozen or a.desired_status != "run":
                continue
            for t in a.tasks.values():
                if t.waiting_for_variable and t.state == "pending":
                    t.waiting_for_variable = False
                    self._launch(a, t)
