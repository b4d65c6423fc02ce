"""Cluster mode on HashiCorp Nomad.

- `client`: the python-nomad client the settings describe, and Nomad's errors
  turned into `NomadError` (a `DispatchError`) with a clear message;
- `specs`: the one definition every Nomad job of the refinery is generated from
  (parameterized batch jobs per job kind and RAM tier, the Foreman's service job,
  periodic surveys);
- `register`: registering them idempotently, and what `manage.py nomad status` shows;
- `task_env`: the environment each task carries (secrets masked when shown);
- `dispatcher`: `NomadDispatcher`, which sends each job as a dispatch of its
  parameterized job and tells the Foreman what became of it.
"""
