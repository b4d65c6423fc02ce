"""Throwaway servers for the test suite and the benchmarks: PostgreSQL (run as the
`postgres` user, since the server refuses to run as root) and an S3 server (moto) on
loopback."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

POSTGRES_BIN_DIRS = [Path("/usr/lib/postgresql/15/bin"), Path("/usr/local/bin")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def postgres_tool(name: str) -> str:
    for folder in POSTGRES_BIN_DIRS:
        if (folder / name).exists():
            return str(folder / name)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(
            f"{name} not found: install PostgreSQL 15 (apt-get install postgresql-15)"
        )
    return found


@dataclass
class Postgres:
    """A PostgreSQL cluster in a temporary folder, on a free loopback port."""

    port: int = field(default_factory=free_port)
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="refinery-pg-")))
    password: str = "refinery-test"

    @property
    def url(self) -> str:
        return f"postgres://refinery:{self.password}@127.0.0.1:{self.port}/refinery"

    def _as_postgres(self) -> dict:
        if os.geteuid() != 0:
            return {}
        entry = pwd.getpwnam("postgres")

        def demote() -> None:
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)

        return {"preexec_fn": demote}

    def start(self) -> Postgres:
        data = self.folder / "data"
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        pwfile = self.folder / "pw"
        pwfile.write_text(self.password)
        if os.geteuid() == 0:
            os.chown(pwfile, pwd.getpwnam("postgres").pw_uid, -1)
        subprocess.run(
            [postgres_tool("initdb"), "-D", str(data), "-U", "refinery", "--pwfile", str(pwfile),
             "-A", "scram-sha-256", "-E", "UTF8", "--no-sync"],
            check=True, stdout=subprocess.DEVNULL, **self._as_postgres(),
        )  # fmt: skip
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        subprocess.run(
            [postgres_tool("pg_ctl"), "-D", str(data), "-o", options, "-l",
             str(self.folder / "server.log"), "-w", "start"],
            check=True, stdout=subprocess.DEVNULL, **self._as_postgres(),
        )  # fmt: skip
        env = {**os.environ, "PGPASSWORD": self.password}
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "refinery", "-d", "postgres",
             "-qc", "CREATE DATABASE refinery"],
            check=True, env=env,
        )  # fmt: skip
        return self

    def pg_ctl(self, action: str) -> None:
        """`stop`, `start` or `restart` the server (the reliability tests do)."""
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} "
            "-c fsync=off -c synchronous_commit=off -c max_connections=200"
        )
        subprocess.run(
            [postgres_tool("pg_ctl"), "-D", str(self.folder / "data"), "-o", options, "-l",
             str(self.folder / "server.log"), "-m", "fast", "-w", action],
            check=True, stdout=subprocess.DEVNULL, **self._as_postgres(),
        )  # fmt: skip

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.pg_ctl("stop")
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass
class MotoServer:
    """An S3 server (moto) on a free loopback port."""

    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoServer:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


S3_TEST_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}
