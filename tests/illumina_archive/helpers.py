"""What the run archive's tests share: a generated run folder, a snapshot of a
tree to compare, the rows a survey makes for a complete run, and a process
that cannot read what a file's mode denies (root reads it otherwise)."""

from __future__ import annotations

import ctypes
import hashlib
import os
import stat
from pathlib import Path

from demo.archive_run_folder import write_run_folder

RUN_ID = "230101_M01234_0042_000000000-ABCDE"


def small_run(parent: Path, **options) -> Path:
    """About 250 small files, a link inside the folder and an empty folder."""
    root = write_run_folder(parent, RUN_ID, **options)
    (root / "Logs").mkdir()
    (root / "Logs" / "run.log").write_text("started\nfinished\n")
    os.symlink("run.log", root / "Logs" / "latest.log")
    (root / "Recipe").mkdir()  # empty
    os.chmod(root / "RunInfo.xml", 0o640)
    return root


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under `root`: kind, mode, mtime (ns), and size and SHA-256
    (files) or target (links)."""
    tree = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            info = path.lstat()
            rel = path.relative_to(root).as_posix()
            if stat.S_ISLNK(info.st_mode):
                tree[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                tree[rel] = ("folder", stat.S_IMODE(info.st_mode), info.st_mtime_ns)
            else:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                tree[rel] = ("file", stat.S_IMODE(info.st_mode), info.st_mtime_ns, info.st_size,
                             digest)  # fmt: skip
    info = root.stat()
    tree["."] = ("root", stat.S_IMODE(info.st_mode), info.st_mtime_ns)
    return tree


def without_file_permission_override() -> None:
    """For `preexec_fn`: the new process cannot read what a file's mode denies,
    even as root (it drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from its
    bounding set, so exec does not give them back). A user other than root has
    neither already."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


PR_CAPBSET_DROP = 24
