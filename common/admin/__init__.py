"""Job history and data in the Django admin. History is read-only here: jobs are
changed by the refinery (and `manage.py jobs`), never by hand."""

from common.admin import control, data, jobs

__all__ = ["control", "data", "jobs"]
