"""The arrows of DESIGN.md's layout, checked on the source: imports point down.

`common` imports no app; `surveyor`, `downloaders` and `processors` import
`common` and the runner but never each other; `runner` finds their code through
its registry and imports none of them; `foreman` and `api` read models and call
the runner, and import no pipeline app's code (another app's `models` is
reading)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
APPS = {"common", "runner", "surveyor", "downloaders", "processors", "foreman", "api", "demo"}
PIPELINE_APPS = {"surveyor", "downloaders", "processors"}
# What each app may import of the others.
ALLOWED = {
    "common": set(),
    "runner": {"common"},
    "surveyor": {"common", "runner"},
    "downloaders": {"common", "runner"},
    "processors": {"common", "runner"},
    "foreman": {"common", "runner", "api"},
    "api": {"common", "runner", "foreman"},
}


def imports_of(app: str) -> list[tuple[str, str]]:
    """(module file, imported module) for each import of another app in `app`."""
    found = []
    for path in sorted((PROJECT / app).rglob("*.py")):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            else:
                continue
            for name in names:
                if name.split(".")[0] in APPS - {app}:
                    found.append((str(path.relative_to(PROJECT)), name))
    return found


def is_models(module: str) -> bool:
    return module.split(".")[1:2] == ["models"]


@pytest.mark.parametrize("app", sorted(ALLOWED))
def test_imports_point_down(app):
    wrong = []
    for path, module in imports_of(app):
        target = module.split(".")[0]
        if target in ALLOWED[app]:
            continue
        if app in ("foreman", "api") and target in PIPELINE_APPS and is_models(module):
            continue  # the operator's surfaces read every app's models
        wrong.append(f"{path} imports {module}")
    assert not wrong, "\n".join(wrong)


def test_the_check_sees_imports():
    """The walk finds what is there: the api reads the runner's registry."""
    assert ("api/engines/views.py", "runner.registry") in imports_of("api")
