"""The API's query parameters: one django-filter FilterSet per list.

Every value is validated before it reaches a query. A bad one is answered with
400 and `{"<parameter>": "<what is wrong>: '<the value>'"}`, one entry per bad
parameter; an empty value filters nothing.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time

import django_filters as filters
from django import forms
from django.core.exceptions import ValidationError as FormValidationError
from django.db import models
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework.exceptions import ValidationError

from common.models import (
    Batch,
    DownloaderJob,
    Experiment,
    ProcessorJob,
    Sample,
    SequencingRun,
    SurveyJob,
    TranscriptomeIndex,
)

WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")
# What a database integer column can hold (SQLite raises OverflowError past it).
SMALLEST_INTEGER, LARGEST_INTEGER = -(2**63), 2**63 - 1


def whole_number(value: str) -> int:
    """`value` as an int, if it is written as one (ASCII digits, no decimals)."""
    value = value.strip()
    if not WHOLE_NUMBER.fullmatch(value):
        raise ValueError(value)
    return int(value)  # ValueError past Python's limit on digits


def bad_parameters(problems: dict[str, list[str]], query) -> ValidationError:
    """The 400 for the bad query parameters `problems` (name -> messages)."""
    return ValidationError(
        {
            name: "; ".join(str(m).rstrip(".") for m in messages) + f": {query.get(name)!r}"
            for name, messages in problems.items()
        }
    )


class WholeNumberField(forms.Field):
    default_error_messages = {"invalid": "not a whole number"}

    def to_python(self, value):
        if value in self.empty_values:
            return None
        try:
            return whole_number(str(value))
        except ValueError:
            raise FormValidationError(self.error_messages["invalid"], code="invalid") from None


class MomentField(forms.CharField):
    """A date (midnight UTC) or an ISO 8601 date and time (UTC unless it says)."""

    default_error_messages = {"invalid": "not a date or time"}

    def to_python(self, value):
        value = super().to_python(value)
        if value in self.empty_values:
            return None
        try:
            moment = parse_datetime(value)
            if moment is None and (day := parse_date(value)) is not None:
                moment = datetime.combine(day, time(), tzinfo=UTC)
        except ValueError:  # the right shape, but no such day or hour
            moment = None
        if moment is None:
            raise FormValidationError(self.error_messages["invalid"], code="invalid")
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment, timezone.get_default_timezone())
        return moment


@extend_schema_field(OpenApiTypes.INT)
class WholeNumberFilter(filters.Filter):
    field_class = WholeNumberField

    def filter(self, qs, value):
        if value is not None and not SMALLEST_INTEGER <= value <= LARGEST_INTEGER:
            return qs.none()  # no row holds a number that large
        return super().filter(qs, value)


MOMENT_HELP = "a date (midnight UTC), or an ISO 8601 date and time (UTC unless it says)"


class MomentFilter(filters.CharFilter):  # a string in the schema, described by its label
    field_class = MomentField


def choice_filter(model: type[models.Model], field_name: str) -> filters.ChoiceFilter:
    """Exactly one of the values the model's field may hold."""
    choices = model._meta.get_field(field_name).choices
    allowed = ", ".join(value for value, _label in choices)
    return filters.ChoiceFilter(
        field_name=field_name,
        choices=choices,
        error_messages={"invalid_choice": f"not one of {allowed}"},
    )


class FilterBackend(DjangoFilterBackend):
    """django-filter's backend, with the refinery's 400 (see the module's doc)."""

    def filter_queryset(self, request, queryset, view):
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        if not filterset.is_valid():
            raise bad_parameters(filterset.errors, request.query_params)
        return filterset.qs


# --- one FilterSet per list -------------------------------------------------------------


class OrganismFilter(filters.FilterSet):
    name = filters.CharFilter(field_name="scientific_name", lookup_expr="iexact")
    taxonomy_id = WholeNumberFilter(field_name="taxonomy_id")


class TranscriptomeIndexFilter(filters.FilterSet):
    organism = filters.CharFilter(field_name="organism__scientific_name", lookup_expr="iexact")
    length = choice_filter(TranscriptomeIndex, "length")
    release = filters.CharFilter(field_name="source_release")


class ComputedFileFilter(filters.FilterSet):
    format = filters.CharFilter(field_name="format")
    processor_job = WholeNumberFilter(field_name="processor_job")


class BatchFilter(filters.FilterSet):
    source = choice_filter(Batch, "source")
    status = choice_filter(Batch, "status")
    accession = filters.CharFilter(field_name="accession")
    pipeline = choice_filter(Batch, "pipeline_required")


class JobFilter(filters.FilterSet):
    state = choice_filter(SurveyJob, "state")  # the same for every kind
    since = MomentFilter(
        field_name="created_at", lookup_expr="gte", label=f"created since: {MOMENT_HELP}"
    )


class SurveyJobFilter(JobFilter):
    source = choice_filter(SurveyJob, "source")


class DownloaderJobFilter(JobFilter):
    task = choice_filter(DownloaderJob, "downloader_task")


class ProcessorJobFilter(JobFilter):
    pipeline = choice_filter(ProcessorJob, "pipeline")


QUALITY = (("good", "good"), ("low", "low"), ("unquantified", "unquantified"))
QUALITY_ERRORS = {"invalid_choice": "not one of good, low, unquantified"}


def by_quality(queryset, prefix: str, value: str):
    """Samples (or studies with samples) whose runs' quantifications are of `value`."""
    if not value:
        return queryset
    if value == "unquantified":
        return queryset.filter(**{f"{prefix}batches__quantification__isnull": True}).distinct()
    flag = {f"{prefix}batches__quantification__low_quality": value == "low"}
    return queryset.filter(**flag).distinct()


class SampleFilter(filters.FilterSet):
    organism = filters.CharFilter(field_name="organism__scientific_name", lookup_expr="iexact")
    study = filters.CharFilter(method="by_study")
    platform = filters.CharFilter(field_name="platform", lookup_expr="iexact")
    quality = filters.ChoiceFilter(
        choices=QUALITY, method="by_quality", error_messages=QUALITY_ERRORS
    )

    class Meta:
        model = Sample
        fields: list[str] = []

    def by_study(self, queryset, name, value):
        return queryset.filter(
            models.Q(experiments__accession__iexact=value)
            | models.Q(experiments__alternate_accession__iexact=value)
        ).distinct()

    def by_quality(self, queryset, name, value):
        return by_quality(queryset, "", value)


class ExperimentFilter(filters.FilterSet):
    organism = filters.CharFilter(method="by_organism")
    study = filters.CharFilter(method="by_study")
    platform = filters.CharFilter(method="by_platform")
    quality = filters.ChoiceFilter(
        choices=QUALITY, method="by_quality", error_messages=QUALITY_ERRORS
    )

    class Meta:
        model = Experiment
        fields: list[str] = []

    def by_organism(self, queryset, name, value):
        return queryset.filter(samples__organism__scientific_name__iexact=value).distinct()

    def by_study(self, queryset, name, value):
        return queryset.filter(
            models.Q(accession__iexact=value) | models.Q(alternate_accession__iexact=value)
        )

    def by_platform(self, queryset, name, value):
        return queryset.filter(samples__platform__iexact=value).distinct()

    def by_quality(self, queryset, name, value):
        return by_quality(queryset, "samples__", value)


class SequencingRunFilter(filters.FilterSet):
    state = choice_filter(SequencingRun, "state")
    platform = choice_filter(SequencingRun, "platform")
    instrument = filters.CharFilter(
        method="by_instrument",
        label="the instrument's id (e.g. A01234) or type (e.g. NovaSeq 6000)",
    )
    flowcell = filters.CharFilter(field_name="flowcell", lookup_expr="iexact")
    since = MomentFilter(
        method="by_since", label=f"whose state changed, or that ran, since: {MOMENT_HELP}"
    )

    class Meta:
        model = SequencingRun
        fields: list[str] = []

    def by_instrument(self, queryset, name, value):
        return queryset.filter(
            models.Q(instrument_id__iexact=value) | models.Q(instrument_type__iexact=value)
        )

    def by_since(self, queryset, name, value):
        return queryset.filter(
            models.Q(state_changed_at__gte=value) | models.Q(run_date__gte=value)
        )
