"""What an install that is not editable (the Docker images' `pip install .`)
carries: every file in the packages that is not Python must be package data in
pyproject.toml, or the installed refinery lacks it (the admin's templates, the
converter's C source)."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]


def pyproject() -> dict:
    return tomllib.loads((PROJECT / "pyproject.toml").read_text())


def packages() -> list[str]:
    patterns = pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]
    tops = {pattern.rstrip("*") for pattern in patterns}
    return sorted(top for top in tops if (PROJECT / top / "__init__.py").is_file())


def test_every_file_a_package_holds_besides_python_is_package_data():
    data = pyproject()["tool"]["setuptools"].get("package-data", {})
    missing = []
    for top in packages():
        for path in sorted((PROJECT / top).rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts or path.suffix in (".py", ".pyc"):
                continue
            inside = path.relative_to(PROJECT / top).as_posix()
            if not any(fnmatch.fnmatch(inside, glob) for glob in data.get(top, [])):
                missing.append(f"{top}/{inside}")
    assert missing == [], f"add these to [tool.setuptools.package-data]: {missing}"


def test_the_package_data_the_refinery_reads_is_there():
    data = pyproject()["tool"]["setuptools"]["package-data"]
    for top, globs in data.items():
        for glob in globs:
            assert list((PROJECT / top).glob(glob)), f"{top}: {glob} matches no file"
    from processors.bcl.native import SOURCE_PATH

    assert SOURCE_PATH.is_file() and "cluster_major" in SOURCE_PATH.read_text()
