"""The refinery's commands: under one heading in `manage.py help`, each with a
summary there and examples at the end of its `--help`."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.core.management import get_commands, load_command_class

from refinery.cli import OWN_APPS
from tests.conftest import MANAGE, PROJECT

OWN = sorted((name, app) for name, app in get_commands().items() if app in OWN_APPS)


def test_help_lists_the_refinerys_commands_first_under_one_heading():
    out = subprocess.run(
        [sys.executable, str(MANAGE), "help"], cwd=PROJECT, capture_output=True, text=True,
        check=True,
    ).stdout  # fmt: skip
    ours, _, rest = out.partition("Django's and other apps' commands:")
    assert "[refinery]" in ours
    for name, _ in OWN:
        assert f"\n    {name} " in ours, name
        assert f"\n    {name}\n" not in rest, f"{name} is listed twice"
    assert "[django]" in rest and "migrate" in rest


@pytest.mark.parametrize(("name", "app"), OWN, ids=[name for name, _ in OWN])
def test_every_command_ends_its_help_with_examples(name, app):
    command = load_command_class(app, name)
    text = command.create_parser("manage.py", name).format_help()
    examples = text.partition("examples:\n")[2]
    assert examples, f"`manage.py {name} --help` has no examples"
    assert f"manage.py {name}" in examples or "make " in examples
