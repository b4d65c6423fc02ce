"""Fixtures for the Nomad dispatcher's tests: the stand-in Nomad server
(demo/nomad_standin), with the refinery's jobs registered."""

from __future__ import annotations

import sys

import pytest

from demo.nomad_standin import NomadStandin, fake_node
from runner.dispatch import base
from tests.conftest import MANAGE

# One big node: the default tiers go up to 64 GB, and run_children=False
# allocations hold their memory until finished by hand.
BIG_NODE = {"cpu_mhz": 400_000, "memory_mb": 4_000_000, "cores": 64}


def run_on_this_machine(argv: list[str]) -> list[str]:
    """The image's `python manage.py …` as this checkout's interpreter and manage.py."""
    if argv[:2] == ["python", "manage.py"]:
        return [sys.executable, str(MANAGE), *argv[2:]]
    return [sys.executable if a == "python" else a for a in argv]


def use_standin(settings, standin: NomadStandin) -> None:
    settings.REFINERY_DISPATCHER = "nomad"
    settings.REFINERY_NOMAD_ADDR = standin.address
    settings.REFINERY_NOMAD_TOKEN = ""
    settings.REFINERY_NOMAD_NAMESPACE = ""
    settings.REFINERY_NOMAD_REGION = ""
    settings.REFINERY_NOMAD_TIMEOUT_S = 5


@pytest.fixture(autouse=True)
def _fresh_dispatchers():
    base._dispatcher.cache_clear()
    yield
    base._dispatcher.cache_clear()


@pytest.fixture
def idle_standin(settings):
    """A stand-in that starts no processes: allocations run until finished by hand."""
    with NomadStandin(run_children=False, nodes=[fake_node(**BIG_NODE)]) as standin:
        use_standin(settings, standin)
        yield standin
        assert standin.internal_errors == []


@pytest.fixture
def registered(idle_standin):
    """The idle stand-in with every refinery job registered."""
    from runner.nomad.register import register_all
    from runner.nomad.specs import all_specs

    register_all(all_specs())
    return idle_standin


@pytest.fixture
def dispatcher(settings):
    from runner.dispatch import get_dispatcher

    settings.REFINERY_DISPATCHER = "nomad"
    return get_dispatcher()
