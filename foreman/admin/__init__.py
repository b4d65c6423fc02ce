"""The Django admin: job history, the data, and the operators' and the
Foreman's records. History is read-only here: jobs are changed by the refinery
(and `manage.py jobs`), never by hand. It lives in the operators' app, since it
reads the runtime's job logs (the data kernel imports no app)."""

from foreman.admin import (
    control,
    data,
    deliveries,
    foreman_records,
    jobs,
    overview,
    runs,
    sequencers,
)

__all__ = [
    "control",
    "data",
    "deliveries",
    "foreman_records",
    "jobs",
    "overview",
    "runs",
    "sequencers",
]
