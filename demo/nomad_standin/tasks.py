"""The raw_exec-like task runner: a task's command, arguments and environment
(``${...}`` interpolation, ``NOMAD_*`` and ``NOMAD_META_*``, the workload identity, the
templates' variables), its process, its logs, and the timers that scale Nomad's
delays.

The environment is built in Nomad's order (client/taskenv): the client's own
environment (``host_env``, by default this process's, as raw_exec passes the agent's
on), the ``NOMAD_*`` variables, the task's ``Env``, ``NOMAD_TOKEN`` when its default
``Identity`` says ``Env``, then what its ``Envvars`` templates render, which overrides
the rest. ``env_overrides`` is the stand-in's own last word, for tests.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
from collections.abc import Callable
from typing import Any

from .go_text import SEC
from .state import StandinState, _Alloc, _event, _now, _Task

_INTERPOLATION = re.compile(r"\$\{([^}]+)\}")


def _interpolate(value: str, env: dict[str, str]) -> str:
    return _INTERPOLATION.sub(lambda m: env.get(m.group(1).strip(), m.group(0)), value)


def _clean_env_key(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", key)


class TaskRunner(StandinState):
    """The task-running methods of :class:`~.server.NomadStandin`."""

    def _log_path(self, a: _Alloc, task: str, stream: str) -> str:
        return os.path.join(a.dir, "alloc", "logs", f"{task}.{stream}.0")

    def _launch(self, a: _Alloc, t: _Task) -> None:
        t.generation += 1
        t.killing = False
        if a.virtual:
            if self._render_templates(a, t) is not None:
                self._task_started(a, t)
            return
        thread = threading.Thread(
            target=self._task_thread,
            args=(a, t, t.generation),
            daemon=True,
            name=f"nomad-standin-task-{a.id[:8]}-{t.name}",
        )
        self._threads = [th for th in self._threads if th.is_alive()]
        self._threads.append(thread)
        thread.start()

    def _task_started(self, a: _Alloc, t: _Task) -> None:
        t.state = "running"
        t.started_at = _now()
        t.events.append(_event("Started", "Task started by client"))
        self._alloc_updated(a)

    def _task_environment(
        self, a: _Alloc, t: _Task
    ) -> tuple[list[str], dict[str, str], str] | None:
        """The task's command, environment and directory; None when its templates
        keep it from starting (see templates.py)."""
        job = a.job_spec
        group = a.group_spec()
        node = self._node(a.node_id) or {}
        meta: dict[str, str] = {}
        meta.update(job.get("Meta") or {})
        meta.update(group.get("Meta") or {})
        meta.update(t.spec.get("Meta") or {})
        p = job.get("ParameterizedJob") or {}
        for key in [*(p.get("MetaRequired") or []), *(p.get("MetaOptional") or [])]:
            meta.setdefault(key, "")
        r = t.spec["Resources"]
        task_dir = os.path.join(a.dir, t.name)
        nomad: dict[str, str] = {
            "NOMAD_ALLOC_DIR": os.path.join(a.dir, "alloc"),
            "NOMAD_TASK_DIR": os.path.join(task_dir, "local"),
            "NOMAD_SECRETS_DIR": os.path.join(task_dir, "secrets"),
            "NOMAD_MEMORY_LIMIT": str(r["MemoryMB"]),
            "NOMAD_MEMORY_MAX_LIMIT": str(r.get("MemoryMaxMB") or r["MemoryMB"]),
            "NOMAD_CPU_LIMIT": str(r["CPU"]),
            "NOMAD_ALLOC_ID": a.id,
            "NOMAD_SHORT_ALLOC_ID": a.id[:8],
            "NOMAD_ALLOC_NAME": a.name,
            "NOMAD_ALLOC_INDEX": str(a.index),
            "NOMAD_TASK_NAME": t.name,
            "NOMAD_GROUP_NAME": a.group,
            "NOMAD_JOB_ID": a.job_id,
            "NOMAD_JOB_NAME": job["Name"],
            "NOMAD_JOB_PARENT_ID": a.parent_id,
            "NOMAD_DC": node.get("Datacenter", ""),
            "NOMAD_NAMESPACE": a.ns,
            "NOMAD_REGION": job.get("Region", ""),
        }
        for k, v in meta.items():
            nomad[f"NOMAD_META_{k.upper()}"] = v
            nomad[f"NOMAD_META_{k}"] = v
        attrs = {
            "node.unique.id": node.get("ID", ""),
            "node.unique.name": node.get("Name", ""),
            "node.datacenter": node.get("Datacenter", ""),
            "node.region": self.region,
            "node.class": node.get("NodeClass", ""),
            "node.pool": node.get("NodePool", ""),
        }
        attrs.update({f"attr.{k}": v for k, v in (node.get("Attributes") or {}).items()})
        attrs.update({f"meta.{k}": v for k, v in (node.get("Meta") or {}).items()})
        base = {**nomad, **attrs}
        task_env = {k: _interpolate(str(v), base) for k, v in (t.spec.get("Env") or {}).items()}
        full = {**base, **task_env}
        config = t.spec.get("Config") or {}
        argv: list[str] = []
        if config.get("command"):
            argv.append(_interpolate(str(config["command"]), full))
        argv.extend(_interpolate(str(x), full) for x in config.get("args") or [])
        if self.command_rewriter is not None:
            argv = list(self.command_rewriter(list(argv)))
        rendered = self._render_templates(a, t)
        if rendered is None:
            return None
        hooks = self._identity_env(a, t, task_dir)
        env = dict(os.environ if self.host_env is None else self.host_env)
        env.update({_clean_env_key(k): v for k, v in nomad.items()})
        env.update({_clean_env_key(k): v for k, v in task_env.items()})
        env.update(hooks)
        env.update(rendered)
        for k, v in self.env_overrides.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        return argv, env, self.cwd or task_dir

    def _identity_env(self, a: _Alloc, t: _Task, task_dir: str) -> dict[str, str]:
        """The workload identity, where the task's default Identity asks for it:
        ``NOMAD_TOKEN`` (Env) and ``secrets/nomad_token`` or its Filepath (File)."""
        identity = t.spec.get("Identity") or {}
        if not (identity.get("Env") or identity.get("File")):
            return {}
        token = self._issue_identity(a, t)
        if identity.get("File"):
            path = os.path.join(task_dir, identity.get("Filepath") or "secrets/nomad_token")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(token)
        return {"NOMAD_TOKEN": token} if identity.get("Env") else {}

    def _task_thread(self, a: _Alloc, t: _Task, gen: int) -> None:
        with self._lock:
            if not self._alive or a.frozen or t.generation != gen or a.desired_status != "run":
                return
            try:
                prepared = self._task_environment(a, t)
            except Exception as e:
                self._task_exited(a, t, 0, 0, driver_error=f"stand-in: {e!r}")
                return
            if prepared is None:
                return
            argv, env, cwd = prepared
            if not argv:
                self._task_exited(
                    a,
                    t,
                    0,
                    0,
                    driver_error="stand-in: the task has no Config.command to run",
                )
                return
            out_path = self._log_path(a, t.name, "stdout")
            err_path = self._log_path(a, t.name, "stderr")
        try:
            with open(out_path, "ab") as out, open(err_path, "ab") as err:
                proc = subprocess.Popen(
                    argv,
                    env=env,
                    cwd=cwd,
                    stdout=out,
                    stderr=err,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
        except OSError as e:
            with self._lock:
                if t.generation == gen:
                    self._task_exited(
                        a,
                        t,
                        0,
                        0,
                        driver_error=f"failed to launch command with executor: {e}",
                    )
            return
        with self._lock:
            t.proc = proc
            if not self._alive or a.frozen or t.generation != gen:
                self._killpg(proc, signal.SIGKILL)
            elif a.desired_status != "run":
                self._killpg(proc, self._kill_signal(t))
            else:
                self._task_started(a, t)
        rc = proc.wait()
        exit_code, sig = (128 - rc, -rc) if rc < 0 else (rc, 0)
        with self._lock:
            if t.proc is proc:
                t.proc = None
            if t.generation != gen or not self._alive:
                return
            self._task_exited(a, t, exit_code, sig)

    def _killpg(self, proc: subprocess.Popen, sig: int) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)

    def _kill_signal(self, t: _Task) -> int:
        name = t.spec.get("KillSignal") or ("SIGTERM" if t.spec["Driver"] == "docker" else "SIGINT")
        return getattr(signal, name, signal.SIGTERM)

    def _timer(self, delay_ns: int, fn: Callable[..., None], *args: Any) -> None:
        seconds = max(0.0, delay_ns / SEC * self.time_scale)

        def run() -> None:
            with self._lock:
                if self._alive:
                    fn(*args)

        timer = threading.Timer(seconds, run)
        timer.daemon = True
        self._timers = [x for x in self._timers if x.is_alive()]
        self._timers.append(timer)
        timer.start()
