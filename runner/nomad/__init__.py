"""Cluster mode on HashiCorp Nomad.

- `client`: the python-nomad client the settings describe, and Nomad's errors
  turned into `NomadError` (a `DispatchError`) with a clear message;
- `specs`: the one definition every Nomad job of the refinery is generated from
  (parameterized batch jobs per job kind and RAM tier, the Foreman's service job,
  periodic surveys), with the Nomad Variables that hold their secrets;
- `task_spec`: the parts of a job's specification (the task with its settings,
  the template that renders its secrets, its workload identity; the task group);
- `task_env`: which settings the tasks get, which of them are secrets (they go
  to Nomad Variables, never into a specification) and masking for review;
- `checks`: what would keep the tasks from starting, or show a secret, found
  before `register` registers anything;
- `register`: writing the variables and registering the jobs idempotently, and
  what `manage.py nomad status` shows;
- `dispatcher`: `NomadDispatcher`, which sends each job as a dispatch of its
  parameterized job and tells the Foreman what became of it;
- `task_end`: how a task ended (its allocation's events, the end of its stderr),
  for the Foreman's failure reasons.
"""
