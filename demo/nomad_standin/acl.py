"""Who is asking: a request's ACL token, and the workload identities tasks get.

With ``strict_token`` set, ACLs are on: ``strict_token`` is the one management token,
a request without a token is refused (403 ``Permission denied``) and an unknown
token too (403 ``ACL token not found``). A task whose default ``Identity`` says
``Env`` (or ``File``) gets its workload identity as ``NOMAD_TOKEN`` (or in
``secrets/nomad_token``); the stand-in accepts it while its allocation is not
terminal. A workload identity has the implicit policy Nomad gives it over variables
(acl/acl.go, matchingVariablesCapabilitySet): read and list ``nomad/jobs``,
``nomad/jobs/<job>``, ``nomad/jobs/<job>/<group>`` and ``nomad/jobs/<job>/<group>/<task>``
in its namespace, where ``<job>`` is the parent of a dispatched or periodic child
(Job.GetIDforWorkloadIdentity). Without ``strict_token`` ACLs are off: every request
may do everything, as in Nomad.

Simplifications: ACL policies are not modelled. A workload identity may call every
endpoint other than the variables ones, as if the operator had attached a policy
allowing it (``nomad acl policy apply -job``); Nomad would allow only what the
attached policies grant. The identity is an opaque token shaped like a JWT, not a
signed one.
"""

from __future__ import annotations

import base64
import json
import secrets

from .go_text import HTTPError
from .state import StandinState, _Alloc, _Task


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Acl(StandinState):
    """The ACL methods of :class:`~.server.NomadStandin`."""

    def _caller(self, path: str, headers: dict[str, str]) -> dict | None:
        """The claims of the workload identity making this request, or None for the
        management token (and for everyone while ACLs are off). Raises 403."""
        if self.strict_token is None or path.startswith("/v1/status/"):
            return None
        lowered = {k.lower(): v for k, v in headers.items()}
        token = lowered.get("x-nomad-token")
        auth = lowered.get("authorization", "")
        if token is None and auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        if not token:
            raise HTTPError(403, "Permission denied")
        if token == self.strict_token:
            return None
        with self._lock:
            claims = self._identities.get(token)
            if claims is None:
                raise HTTPError(403, "ACL token not found")
            alloc = self._allocs.get(claims["nomad_allocation_id"])
            if alloc is None or alloc.terminal():
                raise HTTPError(403, "Permission denied")
            return dict(claims, group=alloc.group)

    def _issue_identity(self, a: _Alloc, t: _Task) -> str:
        """The default workload identity of task ``t``: a token the stand-in knows."""
        claims = {
            "nomad_namespace": a.ns,
            "nomad_job_id": a.parent_id or a.job_id,
            "nomad_allocation_id": a.id,
            "nomad_task": t.name,
        }
        header = _b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
        token = f"{header}.{_b64(json.dumps(claims).encode())}.{_b64(secrets.token_bytes(32))}"
        self._identities[token] = claims
        return token

    def _may_read_variable(self, caller: dict | None, namespace: str, path: str) -> bool:
        """Whether ``caller`` (see :meth:`_caller`) may read the variable at ``path``."""
        if caller is None:
            return True
        if namespace != caller["nomad_namespace"]:
            return False
        job, group, task = caller["nomad_job_id"], caller["group"], caller["nomad_task"]
        return path in (
            "nomad/jobs",
            f"nomad/jobs/{job}",
            f"nomad/jobs/{job}/{group}",
            f"nomad/jobs/{job}/{group}/{task}",
        )

    def _task_caller(self, a: _Alloc, t: _Task) -> dict | None:
        """The caller a task's templates read variables as: its workload identity
        while ACLs are on, else nobody in particular."""
        if self.strict_token is None:
            return None
        return {
            "nomad_namespace": a.ns,
            "nomad_job_id": a.parent_id or a.job_id,
            "nomad_allocation_id": a.id,
            "nomad_task": t.name,
            "group": a.group,
        }
