"""The Nomad API client, and Nomad's errors as clear messages.

Every call to Nomad goes through `call()`, which turns python-nomad's exceptions
(connection refused, a timeout, a plain-text 4xx/5xx answer, a body that is not
JSON) into `NomadError`, a `DispatchError` whose message says what was asked, of
which address, and what Nomad answered; it never holds the Nomad token.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import TypeVar

import nomad
import requests
from django.conf import settings
from nomad.api.exceptions import BaseNomadException

from common.secrets import MASK, redact
from runner.dispatch.base import DispatchError

T = TypeVar("T")
BODY_MAX = 500


class NomadError(DispatchError):
    """Nomad could not do what was asked. `status` is the HTTP status (None when
    no answer came) and `body` Nomad's plain-text answer."""

    def __init__(self, message: str, status: int | None = None, body: str = ""):
        super().__init__(message)
        self.status = status
        self.body = body

    @property
    def not_found(self) -> bool:
        return self.status == 404


def nomad_client() -> nomad.Nomad:
    """The client for the settings' address, token, namespace and region."""
    return _client(
        settings.REFINERY_NOMAD_ADDR,
        settings.REFINERY_NOMAD_TOKEN,
        settings.REFINERY_NOMAD_NAMESPACE,
        settings.REFINERY_NOMAD_REGION,
        settings.REFINERY_NOMAD_TIMEOUT_S,
        settings.REFINERY_NOMAD_CACERT,
    )


@lru_cache(maxsize=8)
def _client(
    address: str, token: str, namespace: str, region: str, timeout: float, cacert: str
) -> nomad.Nomad:
    verify: bool | str = False
    if address.startswith("https:"):
        verify = cacert or True
    return nomad.Nomad(
        address=address.rstrip("/"),
        # Without a token python-nomad falls back to NOMAD_TOKEN, which the setting
        # comes from anyway.
        token=token or None,
        namespace=namespace or None,
        region=region or None,
        timeout=timeout,
        verify=verify,
        session=requests.Session(),
    )


def _clean(text: str) -> str:
    """`text` without the Nomad token (or any other secret the refinery knows)."""
    token = settings.REFINERY_NOMAD_TOKEN
    if token:
        text = text.replace(token, MASK)
    return redact(text)


def call(what: str, request: Callable[[nomad.Nomad], T]) -> T:
    """Run `request(client)`; any failure becomes a NomadError saying `what` failed."""
    address = settings.REFINERY_NOMAD_ADDR
    try:
        return request(nomad_client())
    except BaseNomadException as error:
        response = error.nomad_resp
        if isinstance(response, requests.Response):
            body = (response.text or "").strip()
            shown = body if len(body) <= BODY_MAX else body[:BODY_MAX] + " …"
            hint = ""
            if response.status_code == 403:
                hint = " (check NOMAD_TOKEN and its ACL policy)"
            message = (
                f"Nomad at {address} refused to {what}: HTTP {response.status_code}: "
                f"{shown or '(no body)'}{hint}"
            )
            raise NomadError(_clean(message), response.status_code, _clean(body)) from None
        raise NomadError(
            _clean(f"cannot reach Nomad at {address} to {what}: {_describe(response)}")
        ) from None
    except requests.RequestException as error:
        raise NomadError(
            _clean(f"cannot reach Nomad at {address} to {what}: {_describe(error)}")
        ) from None
    except ValueError as error:  # an answer that is not JSON
        raise NomadError(
            _clean(f"Nomad at {address} gave an unreadable answer to {what}: {error}")
        ) from None


def _describe(error: object) -> str:
    if isinstance(error, requests.Timeout):
        return f"no answer within {settings.REFINERY_NOMAD_TIMEOUT_S:g} s"
    if isinstance(error, requests.ConnectionError):
        return f"connection failed ({type(error).__name__}: {_root_cause(error)})"
    return f"{type(error).__name__}: {error}"


def _root_cause(error: BaseException) -> str:
    """The innermost reason of a requests/urllib3 error ("Connection refused")."""
    seen = error
    while True:
        inner = seen.__cause__ or seen.__context__
        if inner is None and seen.args and isinstance(seen.args[0], BaseException):
            inner = seen.args[0]
        if inner is None or inner is seen:
            break
        seen = inner
    reason = getattr(seen, "reason", None)
    text = str(reason or seen)
    return text.split(": ", 1)[-1] if "Errno" in text or "]" in text else text
