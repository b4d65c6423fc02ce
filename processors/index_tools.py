"""salmon and RSEM as the transcriptome index pipelines record them: the
versions they report (RSEM's own report is stale, so its Debian package's
version is recorded too), and the CPUs they may run on."""

from __future__ import annotations

import os

from processors.external_tools import tool_version


def salmon_version() -> str:
    """`1.10.1`, from salmon's `salmon 1.10.1`."""
    return tool_version("salmon", "--version").removeprefix("salmon ").strip()


def rsem_reported_version() -> str:
    """`1.3.1`, from `Current version: RSEM v1.3.1`. rsem-prepare-reference has
    no --version; rsem-calculate-expression's is RSEM's one version string, which
    upstream left at v1.3.1 in releases 1.3.2 and 1.3.3."""
    reported = tool_version("rsem-calculate-expression", "--version")
    return reported.removeprefix("Current version:").strip().removeprefix("RSEM v")


def rsem_package_version() -> str:
    """The installed Debian package's version (`1.3.3+dfsg-2+b1`), which says
    which RSEM release this really is; empty without dpkg or the package."""
    version = tool_version("dpkg-query", "--show", "--showformat=${Version}\n", "rsem")
    return "" if version == "unknown" or " " in version else version


def available_cpus() -> int:
    """The CPUs this process may run on (a container's share, not the host's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
