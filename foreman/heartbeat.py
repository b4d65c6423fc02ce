"""The Foreman's own heartbeat: a row per Foreman process, written after every
pass, which `manage.py foreman --check` reads."""

from __future__ import annotations

import os
import socket
from collections import Counter
from datetime import timedelta

from django.db.models import F
from django.utils import timezone

from foreman.models import ForemanBeat

FORGET_AFTER = timedelta(days=7)


def foreman_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def record_beat(name: str, pass_s: float, report: Counter) -> None:
    """Say that the Foreman `name` finished a pass just now."""
    now = timezone.now()
    fields = {"beat_at": now, "last_pass_s": round(pass_s, 4), "last_pass": dict(report)}
    if not ForemanBeat.objects.filter(name=name).update(passes=F("passes") + 1, **fields):
        ForemanBeat.objects.create(name=name, started_at=now, passes=1, **fields)
        ForemanBeat.objects.filter(beat_at__lt=now - FORGET_AFTER).delete()


def health(max_age_s: float) -> tuple[bool, str]:
    """Whether some Foreman finished a pass within `max_age_s` seconds, and a line
    that says so."""
    beat = ForemanBeat.latest()
    if beat is None:
        return False, "no Foreman has ever run here"
    age = beat.age().total_seconds()
    line = (
        f"Foreman {beat.name}: last pass {age:.0f} s ago ({beat.passes} passes since "
        f"{beat.started_at:%Y-%m-%d %H:%M:%S} UTC, the last took {beat.last_pass_s:.2f} s)"
    )
    return age <= max_age_s, line
