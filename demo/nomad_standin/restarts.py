"""When a task ends: the restart policy (in-place restarts after Delay), sibling
kills, stopped and lost allocations, and the reschedule policy (a new allocation)."""

from __future__ import annotations

import signal

from .go_text import go_duration, go_quote, rfc3339
from .state import _LOST, StandinState, _Alloc, _client_status, _event, _now, _Task


class Restarts(StandinState):
    """The restart, kill and reschedule methods of :class:`~.server.NomadStandin`."""

    def _task_exited(
        self,
        a: _Alloc,
        t: _Task,
        exit_code: int,
        sig: int,
        *,
        driver_error: str | None = None,
        oom_killed: bool = False,
    ) -> None:
        if a.frozen or t.state == "dead":
            return
        now = _now()
        if driver_error is None:
            display = f"Exit Code: {exit_code}" + (f", Signal: {sig}" if sig else "")
            t.events.append(
                _event(
                    "Terminated",
                    display,
                    ExitCode=exit_code,
                    Signal=sig,
                    Details={
                        "exit_code": str(exit_code),
                        "signal": str(sig),
                        "oom_killed": "true" if oom_killed else "false",
                        "exit_message": "",
                    },
                )
            )
        else:
            t.events.append(
                _event(
                    "Driver Failure",
                    driver_error,
                    DriverError=driver_error,
                    Details={"driver_error": driver_error},
                )
            )
        if a.desired_status != "run" or t.killing:
            t.events.append(_event("Killed", "Task successfully killed"))
            t.state, t.failed, t.finished_at = "dead", False, now
        elif exit_code == 0 and sig == 0 and driver_error is None:
            t.state, t.finished_at = "dead", now
        else:
            self._restart_or_fail(a, t)
        self._alloc_updated(a)

    def _restart_or_fail(self, a: _Alloc, t: _Task) -> None:
        policy = t.spec["RestartPolicy"]
        if t.restarts < policy["Attempts"]:
            delay = policy["Delay"]
        elif policy["Mode"] == "delay":
            delay = policy["Interval"]
        else:
            message = (
                f"Exceeded allowed attempts {policy['Attempts']} in interval "
                f"{go_duration(policy['Interval'])} and mode is {go_quote(policy['Mode'])}"
            )
            t.events.append(
                _event(
                    "Not Restarting",
                    message,
                    FailsTask=True,
                    Details={"fails_task": "true", "restart_reason": message},
                )
            )
            t.state, t.failed, t.finished_at = "dead", True, _now()
            return
        t.events.append(
            _event(
                "Restarting",
                f"Task restarting in {go_duration(delay)}",
                StartDelay=delay,
                RestartReason="Restart within policy",
                Details={"start_delay": str(delay), "restart_reason": "Restart within policy"},
            )
        )
        t.state = "pending"
        t.restarts += 1
        t.last_restart = _now()
        t.generation += 1
        gen = t.generation
        self._timer(delay, self._restart_task, a, t, gen)

    def _restart_task(self, a: _Alloc, t: _Task, gen: int) -> None:
        if a.frozen or a.desired_status != "run" or t.generation != gen or t.state != "pending":
            return
        self._launch(a, t)

    def _alloc_updated(self, a: _Alloc) -> None:
        was_terminal = a.terminal()
        before = a.client_status
        if not a.frozen:
            derived = _client_status(a.tasks.values())
            if derived is not None:
                a.client_status, a.client_description = derived
        a.modify_index = self._next_index()
        a.modify_time = _now()
        if a.client_status == "failed" and a.desired_status == "run":
            for other in a.tasks.values():
                if other.state != "dead" and not other.killing:
                    failed = next(x.name for x in a.tasks.values() if x.failed)
                    other.events.append(
                        _event(
                            "Sibling Task Failed",
                            f"Task's sibling {go_quote(failed)} failed",
                            FailedSibling=failed,
                        )
                    )
                    self._kill_task(a, other)
        if before != "failed" and a.client_status == "failed" and a.desired_status == "run":
            self._maybe_reschedule(a)
        if not was_terminal and a.terminal():
            self._unblock()
        self._cond.notify_all()

    def _kill_task(self, a: _Alloc, t: _Task) -> None:
        if t.state == "dead":
            return
        t.killing = True
        timeout = t.spec["KillTimeout"]
        signame = signal.Signals(self._kill_signal(t)).name
        t.events.append(
            _event(
                "Killing",
                f"Sent interrupt. Waiting {go_duration(timeout)} before force killing",
                KillTimeout=timeout,
                Details={"kill_timeout": go_duration(timeout)},
                Message=signame,
            )
        )
        proc = t.proc
        if proc is not None:
            self._killpg(proc, self._kill_signal(t))
            self._timer(timeout, lambda: self._killpg(proc, signal.SIGKILL))
            return
        # not started, waiting for a restart, or a task without a process
        t.generation += 1
        t.events.append(_event("Killed", "Task successfully killed"))
        t.state, t.failed, t.finished_at = "dead", False, _now()

    def _stop_alloc(self, a: _Alloc, description: str) -> None:
        a.desired_status = "stop"
        a.desired_description = description
        for t in a.tasks.values():
            self._kill_task(a, t)
        self._alloc_updated(a)

    def _lose(self, a: _Alloc) -> None:
        a.frozen = True
        a.client_status = "lost"
        a.client_description = _LOST
        a.desired_status = "stop"
        a.desired_description = _LOST
        a.modify_index = self._next_index()
        a.modify_time = _now()
        for t in a.tasks.values():
            t.generation += 1
            if t.proc is not None:
                self._killpg(t.proc, signal.SIGKILL)

    def _maybe_reschedule(self, a: _Alloc) -> None:
        job = self._jobs.get(a.key)
        if job is None or job.stop or job.create_index != a.job_create_index:
            return
        policy = job.group(a.group).get("ReschedulePolicy")
        if not policy or not (policy["Unlimited"] or policy["Attempts"] > 0):
            return
        now = _now()
        recent = [
            e
            for e in a.reschedule_events
            if policy["Unlimited"] or now - e["RescheduleTime"] < policy["Interval"]
        ]
        if not policy["Unlimited"] and len(recent) >= policy["Attempts"]:
            return
        delay = policy["Delay"]
        n = len(a.reschedule_events)
        if policy["DelayFunction"] == "exponential":
            delay = policy["Delay"] * (2**n)
        elif policy["DelayFunction"] == "fibonacci":
            x, y = policy["Delay"], policy["Delay"]
            for _ in range(n):
                x, y = y, x + y
            delay = x
        if policy["DelayFunction"] != "constant" and policy["MaxDelay"]:
            delay = min(delay, policy["MaxDelay"])
        a.reschedule_delay = delay
        ev = self._new_eval(job, "alloc-failure", status="pending")
        ev["WaitUntil"] = rfc3339(now + delay)
        ev["StatusDescription"] = "created for delayed rescheduling"
        a.followup_eval_id = ev["ID"]
        self._timer(delay, self._reschedule, ev["ID"], a.id)

    def _reschedule(self, eval_id: str, alloc_id: str) -> None:
        ev = self._evals.get(eval_id)
        a = self._allocs.get(alloc_id)
        if ev is None or ev["Status"] != "pending":
            return
        job = self._jobs.get(ev["_key"])
        if job is None or job.stop or a is None:
            ev["Status"] = "canceled"
            self._cond.notify_all()
            return
        self._place(ev, job, [(a.group, a.index, a, True)])
        self._cond.notify_all()
