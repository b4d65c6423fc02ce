"""Keep secrets out of logs, errors, failure reasons and printed specifications.

One rule, used everywhere the refinery shows text or settings to people:

- a setting or environment variable whose *name* matches `SECRET_NAME` (it holds
  TOKEN, PASS, SECRET, KEY, WEBHOOK, SIGNATURE, CREDENTIAL, AUTHORIZATION or
  HTTP_COOKIE) is a secret: shown by name, its value masked (`mask_named`);
- in any *URL*, the password of `user:password@` and the value of a query
  parameter whose name matches the same pattern are masked (`redact`), so
  `DATABASE_URL` keeps its user, host and database and loses its password;
- in free text (a log record, a job's `failure_reason`, an error report) the
  values of the secrets the settings and the environment name are masked too.

`ExceptionReporterFilter` and `ExceptionReporter` apply the rule to Django's
error reports (the debug page and the admins' error email), `RedactSecretsFilter`
to log records, and `runner.nomad.task_env.masked_env` to `manage.py nomad specs`.

A source's base URL (a setting) may carry `user:password@` for a private
mirror. Those credentials live in the setting only: every URL is stored
without them (`strip_credentials`), and the code that fetches puts them back
from the setting whose base URL the stored one lies under (`with_credentials`).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from functools import lru_cache
from urllib.parse import SplitResult, urlsplit, urlunsplit

from django.conf import settings
from django.core.signals import setting_changed
from django.template.defaultfilters import pprint
from django.utils.html import escape
from django.utils.log import AdminEmailHandler as DjangoAdminEmailHandler
from django.views import debug

MASK = "********"
# Names of settings, environment variables, request headers and query parameters
# whose values are secrets.
SECRET_NAME = re.compile(
    r"TOKEN|PASS|SECRET|KEY|WEBHOOK|SIGNATURE|CREDENTIAL|AUTHORIZATION|HTTP_COOKIE", re.I
)
# Known to be secret whatever the pattern says (kept for the callers that list them).
SECRET_ENVIRONMENT = (
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "NOMAD_TOKEN",
    "DJANGO_SECRET_KEY",
)
# user:password@ in any URL, whether or not we know the password.
URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):[^@/\s]+@", re.I)
# ?name=value or &name=value in any URL; masked when the name is a secret's.
URL_PARAMETER = re.compile(r"(?P<lead>[?&;](?P<name>[\w.-]+)=)(?P<value>[^&;#\s'\"<>]+)")
# Shorter values would mask ordinary words: a real secret is never that short.
MIN_SECRET_LENGTH = 6


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.search(name))


def _secret_values(items) -> list[str]:
    return [value for name, value in items if isinstance(value, str) and is_secret_name(name)]


def _collect_secrets() -> tuple[str, ...]:
    values = [os.environ.get(name, "") for name in SECRET_ENVIRONMENT]
    values.extend(_secret_values(os.environ.items()))
    database_url = os.environ.get("DATABASE_URL", "")
    if database_url:
        values.append(urlsplit(database_url).password or "")
    if settings.configured:
        names = [name for name in dir(settings) if name.isupper() and is_secret_name(name)]
        values.extend(_secret_values((name, getattr(settings, name)) for name in names))
        for database in settings.DATABASES.values():
            values.append(database.get("PASSWORD", ""))
            values.extend(_secret_values(database.get("OPTIONS", {}).items()))
    unique = {v for v in values if len(v) >= MIN_SECRET_LENGTH}
    return tuple(sorted(unique, key=len, reverse=True))


_cached_secrets = lru_cache(maxsize=1)(_collect_secrets)


def _known_secrets() -> tuple[str, ...]:
    """Every secret value the settings and the environment name, longest first.

    Read once settings are configured: a setting that changes (override_settings)
    clears it; code that changes the environment at run time calls
    `_known_secrets.cache_clear()`."""
    return _cached_secrets() if settings.configured else _collect_secrets()


_known_secrets.cache_clear = _cached_secrets.cache_clear


def _forget_secrets(**kwargs) -> None:
    _cached_secrets.cache_clear()


setting_changed.connect(_forget_secrets)


def _mask_parameter(match: re.Match) -> str:
    if is_secret_name(match["name"]):
        return match["lead"] + MASK
    return match[0]


def _redact(text: str, secrets: tuple[str, ...]) -> str:
    if not text:
        return text
    text = URL_CREDENTIALS.sub(rf"\g<scheme>\g<user>:{MASK}@", text)
    text = URL_PARAMETER.sub(_mask_parameter, text)
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


def redact(text: str) -> str:
    """`text` with every known secret, any URL's password and any URL parameter
    named like a secret masked."""
    return _redact(text, _known_secrets())


def redact_data(data):
    """JSON-shaped `data` with `redact` applied to every string in it."""
    secrets = _known_secrets()

    def walk(value):
        if isinstance(value, str):
            return _redact(value, secrets)
        if isinstance(value, dict):
            return {key: walk(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [walk(item) for item in value]
        return value

    return walk(data)


def redact_html(html: str) -> str:
    """`redact` for HTML, where a secret may appear escaped."""
    html = redact(html)
    for secret in _known_secrets():
        html = html.replace(escape(secret), MASK)
    return html


def mask_named(name: str, value: str) -> str:
    """The value of the setting or variable `name` as it may be shown."""
    return MASK if is_secret_name(name) or name in SECRET_ENVIRONMENT else redact(value)


class RedactSecretsFilter(logging.Filter):
    """A logging filter that masks secrets in the formatted message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def _host(parts: SplitResult) -> str:
    """The URL's host and port, as written, without credentials."""
    return parts.netloc.rpartition("@")[2]


def strip_credentials(url: str) -> str:
    """`url` without its `user:password@` (or `user@`), to be stored or shown."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=_host(parts)))


def with_credentials(url: str, base_urls: Iterable[str]) -> str:
    """`url` with the credentials of the base URL it lies under (same scheme,
    host and port, and a path under the base's path; the longest such base
    wins); `url` itself when none of the bases with credentials matches."""
    target = urlsplit(strip_credentials(url))
    best, best_length = None, -1
    for base in base_urls:
        parts = urlsplit(base)
        if "@" not in parts.netloc:
            continue
        if (parts.scheme.lower(), _host(parts).lower()) != (
            target.scheme.lower(),
            target.netloc.lower(),
        ):
            continue
        prefix = parts.path.rstrip("/")
        if target.path != prefix and not target.path.startswith(prefix + "/"):
            continue
        if len(prefix) > best_length:
            best, best_length = parts, len(prefix)
    if best is None:
        return url
    credentials = best.netloc.rpartition("@")[0]
    return urlunsplit(target._replace(netloc=f"{credentials}@{target.netloc}"))


# --- Django's error reports ----------------------------------------------------------


class _Shown:
    """A value as an error report shows it: its redacted `pformat`."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


class ExceptionReporterFilter(debug.SafeExceptionReporterFilter):
    """Django's filter with the refinery's rule (settings: DEFAULT_EXCEPTION_REPORTER_FILTER):
    settings, request headers, cookies, POST parameters and a traceback's local
    variables named like secrets are masked, and so are URL passwords in the
    others. It is active under DEBUG too."""

    cleansed_substitute = MASK
    hidden_settings = SECRET_NAME

    def is_active(self, request) -> bool:
        return True

    def cleanse_setting(self, key, value):
        cleansed = super().cleanse_setting(key, value)
        return redact(cleansed) if isinstance(cleansed, str) else cleansed

    def get_post_parameters(self, request):
        parameters = super().get_post_parameters(request)
        if not parameters:
            return parameters
        parameters = parameters.copy()
        for name in parameters:
            if is_secret_name(name):
                parameters[name] = MASK
        return parameters

    def get_traceback_frame_variables(self, request, tb_frame):
        return [
            (name, MASK if is_secret_name(name) else _Shown(redact(pprint(value))))
            for name, value in super().get_traceback_frame_variables(request, tb_frame)
        ]


class ExceptionReporter(debug.ExceptionReporter):
    """Django's reporter whose reports pass through `redact` as a last step, for
    what no name gives away (an exception's message, a value inside an object)
    (settings: DEFAULT_EXCEPTION_REPORTER)."""

    def get_traceback_data(self) -> dict:
        data = super().get_traceback_data()
        if "request_GET_items" in data:
            data["request_GET_items"] = [
                (name, mask_named(name, value)) for name, value in self.request.GET.items()
            ]
        return data

    def get_traceback_html(self) -> str:
        return redact_html(super().get_traceback_html())

    def get_traceback_text(self) -> str:
        return redact(super().get_traceback_text())


class AdminEmailHandler(DjangoAdminEmailHandler):
    """The admins' error email, its subject and text redacted too."""

    def send_mail(self, subject, message, *args, html_message=None, **kwargs):
        html_message = redact_html(html_message) if html_message else html_message
        super().send_mail(redact(subject), redact(message), *args, html_message=html_message,
                          **kwargs)  # fmt: skip


# NAME=value or NAME: value in free text (a traceback, a task's output).
_SECRET_ASSIGNMENT = re.compile(
    r"(?P<name>\b[A-Za-z0-9_.-]*(?:" + SECRET_NAME.pattern + r")[A-Za-z0-9_.-]*"
    r"['\"]?\s*[=:]\s*['\"]?)(?P<value>[^\s'\",;]+)",
    re.IGNORECASE,
)


def is_secret_setting(name: str, value: str = "") -> bool:
    """Whether the setting `name` holds a secret: its name matches `SECRET_NAME`, it
    is DATABASE_URL, or `value` has credentials in a URL."""
    return (
        bool(SECRET_NAME.search(name))
        or name == "DATABASE_URL"
        or bool(URL_CREDENTIALS.search(value))
    )


def redact_text(text: str, environ: dict[str, str] | None = None) -> str:
    """`redact(text)`, and also the values of every secret setting in `environ`
    (default: this process's environment) and whatever follows a secret-looking
    name in `NAME=value` or `NAME: value`: for text nobody vetted, such as the end
    of a task's output."""
    environ = os.environ if environ is None else environ
    values = sorted(
        {v for k, v in environ.items() if len(v) >= 6 and is_secret_setting(k, v)},
        key=len,
        reverse=True,
    )
    for value in values:
        text = text.replace(value, MASK)
    text = _SECRET_ASSIGNMENT.sub(_mask_assignment, text)
    return redact(text)


def _mask_assignment(match: re.Match) -> str:
    name = match.group("name")
    if name.rstrip("'\" \t=:").endswith(("Error", "Exception", "Warning")):
        return match.group(0)  # KeyError: 'X' names what is missing, it holds no secret
    return name + MASK
