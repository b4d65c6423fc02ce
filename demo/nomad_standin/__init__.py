"""A stand-in for a Nomad agent's HTTP API, for the Nomad dispatcher's tests and benchmark.

Nomad cannot be installed on the machines that run the suite, so the dispatcher is
tested (tests/nomad, tests/nomad_standin) and measured (bench/dispatch.py) against this
server with the real python-nomad client. It follows
``reference/nomad-api.md`` (facts from Nomad 1.x's API, source and python-nomad
2.1.0); where the note is silent it follows Nomad's source.

What it emulates
----------------
- The endpoints a dispatcher uses: ``/v1/jobs`` (list, register), ``/v1/job/<id>``
  (read, register, deregister with ``purge``), ``/summary``, ``/allocations``,
  ``/evaluations``, ``/dispatch``, ``/v1/evaluation/<id>``, ``/v1/allocation/<id>``,
  ``/v1/nodes`` (``resources=true``), ``/v1/node/<id>``, ``/v1/client/fs/logs/<alloc>``
  (plain or framed, from the start or the ``end``), ``/v1/var/<path>`` and ``/v1/vars``
  (Nomad Variables, :mod:`.variables`) and ``/v1/status/leader``. Child IDs contain
  a ``/``: routes match the known suffixes from the right, as Nomad's router does.
- Decoding as Go does: unknown fields are dropped (a misspelt field is silently
  ignored, as by Nomad), keys match case-insensitively, a wrong type (``"30s"`` for
  a duration, ``Count: "1"``, a non-string meta value, bad base64) answers 400 with
  Go's message; the api package's defaults (batch restart 3 attempts/15 s/24 h/fail,
  reschedule 1 attempt, CPU 100, MemoryMB 300, KillTimeout 5 s ...); the server's
  validation, answering 500 with a go-multierror list.
- Dispatch exactly as the note says: the error order and texts (500), the
  idempotency token from the query string only (a body key is ignored) with replay
  returning the existing child and an empty EvalID until it is garbage-collected,
  child IDs ``<parent>/dispatch-<unix>-<8hex>``, merged Meta, ``Dispatched: true``.
- A scheduler over fake nodes: driver, CPU, memory and device feasibility with
  bin-packing; what does not fit gives a complete evaluation with FailedTGAllocs
  and a blocked evaluation that is retried when capacity frees up.
- Job status as Nomad's state store computes it (pending while an evaluation
  waits, running while an allocation is not terminal, dead afterwards), job
  summaries with Children counts, allocation stubs with TaskStates and events.
- A raw_exec-like runner: each task's ``Config.command`` + ``Config.args`` runs as
  a local process (after ``${...}`` interpolation and the optional
  ``command_rewriter``) with the task's Env, ``NOMAD_META_*`` (as given and upper
  case; optional meta keys not sent are empty strings) and the other ``NOMAD_*``
  variables; output is captured for the logs endpoint. A task's ``Templates`` are
  rendered first (:mod:`.templates`): ``{{ with nomadVar "nomad/jobs/<job>" }}``
  reads a variable (a dispatched child reads its parent's), a missing variable keeps
  the task pending until it is written, and an ``Envvars`` template's values reach
  the process's environment. A default ``Identity`` with ``Env`` gives the task a
  workload identity as ``NOMAD_TOKEN`` (:mod:`.acl`). The restart policy
  (in-place restarts with Delay) and the reschedule policy (a new allocation after
  Delay) apply, so a job registered without ``Attempts: 0`` really runs again.
  ``time_scale`` shrinks every Nomad delay.
- Fault injection: lost allocations (replaced, as Nomad replaces them even with
  reschedule attempts 0), unplaceable dispatches, garbage collection,
  an unreachable or hanging server, injected error answers, ACL token checks (one
  management token, and workload identities with their implicit variables policy).

What it deliberately does not do
--------------------------------
Docker (images are not pulled; the command runs on this machine), blocking
queries (``index``/``wait`` are ignored), periodic launches, deployments and
service-job updates, Consul/Vault, networks and ports, lifecycle hooks (all tasks
of a group start together), CPU cores (only MHz is counted), multiple regions,
ACL policies (``strict_token`` is one management token; a workload identity may call
every endpoint but the variables ones), variable locks, templates beyond
``with nomadVar``/``.KEY``/``toJSON`` and their re-rendering (``ChangeMode``), and the
exact whitespace of nested error lists. Re-registering a batch job only places
allocations that are missing.

Usage::

    with NomadStandin(command_rewriter=..., time_scale=0.01) as standin:
        n = nomad.Nomad(address=standin.address)
        n.jobs.register_job({"Job": {...}})
        r = n.job.dispatch_job("REFINERY_X", meta={"JOB_ID": "1"})
        standin.wait_for_job(r["DispatchedJobID"], "dead")
"""

from .server import NomadStandin, fake_node
from .validation import DISPATCH_PAYLOAD_SIZE_LIMIT

__all__ = ["DISPATCH_PAYLOAD_SIZE_LIMIT", "NomadStandin", "fake_node"]
