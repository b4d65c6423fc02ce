"""Text longer than its column allows is refused before it is saved.

PostgreSQL refuses it too (with a DataError that names no field); SQLite stores
it whole, however long. A hostile source once stored a 150-million-character
file name that way. The models whose text comes from outside derive from
`LengthChecked`; `length_problem` lets a survey check a value before it builds
a row from it.
"""

from __future__ import annotations

from django.db import models


class FieldTooLong(ValueError):
    """A value longer than its field's max_length; the message names both."""


def length_problem(model: type[models.Model], field_name: str, value: object) -> str | None:
    """Why `value` cannot be stored in `model.field_name`, or None when it can."""
    limit = getattr(model._meta.get_field(field_name), "max_length", None)
    if limit and isinstance(value, str) and len(value) > limit:
        return f"{model.__name__}.{field_name} takes at most {limit} characters, not {len(value)}"
    return None


class LengthChecked(models.Model):
    """Refuses to save a text longer than its field's max_length (bulk_create and
    QuerySet.update bypass save: do not use them for text from outside)."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs) -> None:
        self.check_lengths()
        super().save(*args, **kwargs)

    def check_lengths(self) -> None:
        for field in self._meta.concrete_fields:
            problem = length_problem(type(self), field.name, getattr(self, field.attname, None))
            if problem is not None:
                raise FieldTooLong(problem)
