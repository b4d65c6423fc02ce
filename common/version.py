"""The version this worker runs, recorded on every job and result."""

from __future__ import annotations

import os
import socket
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version


@lru_cache(maxsize=1)
def refinery_version() -> str:
    """`REFINERY_VERSION` (set by image builds) or the installed package's version."""
    if os.environ.get("REFINERY_VERSION"):
        return os.environ["REFINERY_VERSION"]
    try:
        return version("data-refinery")
    except PackageNotFoundError:
        return "0+unknown"


def worker_identity() -> str:
    """Where this process runs: the Nomad allocation when there is one."""
    alloc = os.environ.get("NOMAD_ALLOC_ID")
    if alloc:
        return f"nomad:{alloc}"
    return f"{socket.gethostname()}:{os.getpid()}"
