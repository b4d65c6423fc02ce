"""Print the requirements of pyproject.toml, one per line, for pip -r.

Used by docker/base/Dockerfile to install the dependencies in a layer of
their own. REFINERY_EXTRAS (comma-separated) adds optional dependency
groups. Usage: python requirements_from_pyproject.py pyproject.toml
"""

import os
import sys
import tomllib


def main(path: str) -> int:
    with open(path, "rb") as f:
        project = tomllib.load(f).get("project", {})
    if "dependencies" in project.get("dynamic", []):
        print(f"{path}: dynamic dependencies are not supported here", file=sys.stderr)
        return 1
    requirements = list(project.get("dependencies", []))
    optional = project.get("optional-dependencies", {})
    extras = [e.strip() for e in os.environ.get("REFINERY_EXTRAS", "").split(",") if e.strip()]
    for extra in extras:
        if extra not in optional:
            print(f"{path}: no optional dependency group {extra!r}", file=sys.stderr)
            return 1
        requirements += optional[extra]
    print("\n".join(requirements))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
