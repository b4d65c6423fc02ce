"""How the refinery talks to a source over HTTP: one policy for every source.

A source is untrusted (DESIGN.md, "Sources are untrusted"): whatever it sends
is input, never instructions. Every HTTP request to a source goes through
`open_url`, and every body is read with `read_body` or `write_body`, so that:

- **Redirects stay on the source.** At most `MAX_REDIRECTS`, each to the host
  of the URL first asked (http may become https, never the reverse) or to a
  host `REFINERY_SOURCE_REDIRECT_HOSTS` names; and never to a loopback,
  private or link-local address (every address the name resolves to is
  checked) unless the source's own host has an address of that kind (a test
  server on loopback may redirect within loopback).
- **Bytes are what came over the wire.** Requests ask for
  `Accept-Encoding: identity` and bodies are read raw, never decoded: a
  download is written as served, so a gzip bomb stays the size it was sent.
- **Bodies have limits.** `read_body` (REST answers, listings) stops at
  `REFINERY_MAX_RESPONSE_BYTES`, decoded or not; `write_body` (downloads)
  stops at the size the source announced for the file.
- **No body reaches a failure reason.** Errors say what was wrong (status with
  its standard phrase, content type, size, the host a redirect led to) and
  never quote what the source sent.

`SourceHTTPError.permanent` says another attempt cannot help; callers turn it
into their own errors (JobError with `no_retry`, or a transient retry).

`fetch_answer` is a REST request with the retries every source client wants:
5xx, 429 (waiting as long as its `Retry-After` asks, clamped) and network
failures are tried again, up to `RETRY_ATTEMPTS` times with a doubling wait
from `REFINERY_HTTP_RETRY_WAIT_S`.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import BinaryIO
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from django.conf import settings

MAX_REDIRECTS = 5
MAX_RETRY_AFTER_S = 60.0
RETRY_ATTEMPTS = 4
MAX_RETRY_WAIT_S = 10.0
CHUNK = 64 * 1024
USER_AGENT = "data-refinery"
GZIP_ENCODINGS = {
    "gzip": 16 + zlib.MAX_WBITS,
    "x-gzip": 16 + zlib.MAX_WBITS,
    "deflate": zlib.MAX_WBITS,
}

_HOST = re.compile(r"[A-Za-z0-9.:_-]{1,253}")
_MEDIA_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]{1,64}/[A-Za-z0-9!#$&^_.+-]{1,64}")
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]{0,15}")


class SourceHTTPError(Exception):
    """What went wrong talking to a source, in words that quote nothing it sent."""

    def __init__(self, reason: str, *, permanent: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class SourceGaveUp(SourceHTTPError):
    """A transient failure (5xx, 429, a network error) that outlasted the retries."""


@dataclass(frozen=True)
class Answer:
    """What a source answered: its status, media type and (capped) body."""

    status: int
    content_type: str
    body: bytes


def new_session() -> requests.Session:
    """A session for one source: identity encoding, the refinery's user agent."""
    session = requests.Session()
    session.headers.update({"Accept-Encoding": "identity", "User-Agent": USER_AGENT})
    return session


# --- words about what a source sent, quoting none of it ------------------------------------------


def status_text(status: int) -> str:
    """`HTTP 503 Service Unavailable`: the standard phrase, not the server's."""
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def shown_host(host: str | None) -> str:
    return host if host and _HOST.fullmatch(host) else "an unreadable host"


def content_type(response: requests.Response) -> str:
    """The response's media type if it looks like one (`text/html`), else a description."""
    media = (response.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
    if not media:
        return "no content type"
    return media if _MEDIA_TYPE.fullmatch(media) else "an unreadable content type"


def declared_length(response: requests.Response) -> int | None:
    value = (response.headers.get("Content-Length") or "").strip()
    return int(value) if value.isascii() and value.isdigit() else None


def root_cause(error: BaseException) -> str:
    """The innermost error's text (`[Errno 111] Connection refused`)."""
    while error.__cause__ or error.__context__:
        error = error.__cause__ or error.__context__
    return str(error) or type(error).__name__


def parse_retry_after(
    value: str | None, *, default: float = 1.0, now: datetime | None = None
) -> float:
    """Seconds to wait, from a `Retry-After` in either of its forms (delta-seconds or an
    HTTP-date), clamped to 0..MAX_RETRY_AFTER_S; `default` when it is missing or unreadable."""
    text = (value or "").strip()
    if not text:
        return default
    if text.isascii() and text.isdigit():
        seconds = float(int(text[:12]))
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return default
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


# --- redirects -----------------------------------------------------------------------------------


def address_kind(address: str) -> str:
    """`public`, `loopback`, `link-local`, `private` or `reserved`."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.is_loopback or ip.is_unspecified:  # 0.0.0.0 reaches this machine too
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_global:
        return "public"
    return "private" if ip.is_private else "reserved"


def address_kinds(host: str) -> set[str]:
    """The kinds of every address `host` names or resolves to (socket.gaierror if none)."""
    try:
        return {address_kind(host.strip("[]"))}
    except ValueError:
        pass
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    return {address_kind(info[4][0]) for info in infos}


def _allowed_by_setting(host: str) -> bool:
    for entry in settings.REFINERY_SOURCE_REDIRECT_HOSTS:
        entry = entry.strip().strip("[]").lower()
        if entry and (host == entry or (entry.startswith(".") and host.endswith(entry))):
            return True
    return False


def check_redirect(source_url: str, target_url: str) -> None:
    """Raise SourceHTTPError unless a source asked at `source_url` may redirect to `target_url`."""
    source, target = urlsplit(source_url), urlsplit(target_url)
    if target.scheme != source.scheme and (source.scheme, target.scheme) != ("http", "https"):
        scheme = target.scheme if _SCHEME.fullmatch(target.scheme) else "an unreadable one"
        raise SourceHTTPError(
            f"{source_url}: redirected to another scheme ({scheme}); redirects keep the "
            "source's scheme",
            permanent=True,
        )
    host, own = (target.hostname or "").lower(), (source.hostname or "").lower()
    shown = shown_host(host)
    if not host:
        raise SourceHTTPError(f"{source_url}: redirected to a URL without a host", permanent=True)
    if host != own and not _allowed_by_setting(host):
        raise SourceHTTPError(
            f"{source_url}: redirected to {shown}, another host; redirects stay on {own} "
            "unless REFINERY_SOURCE_REDIRECT_HOSTS names the host",
            permanent=True,
        )
    try:
        kinds = address_kinds(host)
    except (OSError, UnicodeError):
        raise SourceHTTPError(
            f"{source_url}: redirected to {shown}, which does not resolve"
        ) from None
    try:
        own_kinds = address_kinds(own)
    except (OSError, UnicodeError):
        own_kinds = set()
    refused = sorted(kinds - own_kinds - {"public"})
    if refused:
        raise SourceHTTPError(
            f"{source_url}: redirected to {shown}, a {refused[0]} address; a source may lead "
            "there only when its own host is one",
            permanent=True,
        )


def open_url(
    url: str,
    *,
    session: requests.Session | None = None,
    method: str = "GET",
    headers: dict | None = None,
    params: dict | None = None,
    timeout: float | None = None,
) -> requests.Response:
    """The (streamed, unread) response to `url`, after the redirects the policy allows.
    The caller reads it with `read_body` or `write_body`, and closes it."""
    session = session or new_session()
    timeout = timeout or settings.REFINERY_HTTP_TIMEOUT_S
    current = url
    for hop in range(MAX_REDIRECTS + 1):
        try:
            response = session.request(
                method,
                current,
                headers={"Accept-Encoding": "identity", **(headers or {})},
                params=params if hop == 0 else None,
                timeout=timeout,
                stream=True,
                allow_redirects=False,
            )
        except requests.exceptions.Timeout:
            raise SourceHTTPError(f"{url}: timed out after {timeout} s") from None
        except requests.exceptions.ConnectionError as error:
            raise SourceHTTPError(f"{url}: cannot connect ({root_cause(error)})") from None
        except requests.exceptions.RequestException as error:
            raise SourceHTTPError(
                f"{url}: the request failed ({type(error).__name__})", permanent=True
            ) from None
        if not response.is_redirect:
            return response
        location = response.headers["Location"]
        response.close()
        target = urljoin(current, location)
        check_redirect(url, target)
        if response.status_code == 303 and method != "HEAD":
            method = "GET"
        current = target
    raise SourceHTTPError(f"{url}: too many redirects (more than {MAX_REDIRECTS})", permanent=True)


# --- bodies --------------------------------------------------------------------------------------


def raw_chunks(response: requests.Response, url: str) -> Iterator[bytes]:
    """The body's bytes as they came over the wire (never decoded)."""
    try:
        yield from response.raw.stream(CHUNK, decode_content=False)
    except urllib3.exceptions.ReadTimeoutError:
        timeout = settings.REFINERY_HTTP_TIMEOUT_S
        raise SourceHTTPError(f"{url}: timed out after {timeout} s") from None
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise SourceHTTPError(
            f"{url}: connection broken mid-answer ({type(error).__name__})"
        ) from error


def read_body(response: requests.Response, url: str, limit: int | None = None) -> bytes:
    """The whole body (decoded from gzip or deflate if the server insisted), at most
    `limit` bytes (default REFINERY_MAX_RESPONSE_BYTES) whether decoded or not."""
    limit = limit or settings.REFINERY_MAX_RESPONSE_BYTES
    too_large = f"{url}: the answer is larger than {limit} bytes"
    setting = " (REFINERY_MAX_RESPONSE_BYTES)"
    declared = declared_length(response)
    if declared is not None and declared > limit:
        raise SourceHTTPError(too_large + setting, permanent=True)
    encoding = (response.headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding not in ("identity", *GZIP_ENCODINGS):
        raise SourceHTTPError(
            f"{url}: the answer comes in a content encoding the refinery does not read "
            "(it asks for identity)",
            permanent=True,
        )
    decoder = zlib.decompressobj(GZIP_ENCODINGS[encoding]) if encoding in GZIP_ENCODINGS else None
    body, received = bytearray(), 0
    try:
        for chunk in raw_chunks(response, url):
            received += len(chunk)
            if received > limit:
                raise SourceHTTPError(too_large + setting, permanent=True)
            while decoder is not None and chunk:
                body += decoder.decompress(chunk, limit + 1 - len(body))
                chunk = decoder.unconsumed_tail
                if len(body) > limit:
                    raise SourceHTTPError(too_large + " once decoded" + setting, permanent=True)
            if decoder is None:
                body += chunk
        if decoder is not None:
            body += decoder.flush()
    except zlib.error:
        raise SourceHTTPError(f"{url}: the answer's {encoding} encoding is damaged") from None
    if len(body) > limit:
        raise SourceHTTPError(too_large + setting, permanent=True)
    return bytes(body)


def write_body(
    response: requests.Response,
    out: BinaryIO,
    url: str,
    *,
    limit: int | None = None,
    already: int = 0,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write the body's raw bytes to `out`; returns how many. With `limit`, the file
    (`already` bytes before this body) never grows past it: the transfer stops first."""
    written = 0
    for chunk in raw_chunks(response, url):
        if limit is not None and already + written + len(chunk) > limit:
            raise SourceHTTPError(f"{url}: more than the {limit} bytes expected", permanent=True)
        out.write(chunk)
        written += len(chunk)
        if progress:
            progress(len(chunk))
    return written


def too_large_announced(url: str, limit: int, announced: int) -> SourceHTTPError:
    return SourceHTTPError(
        f"{url}: more than the {limit} bytes expected (the server announces {announced})",
        permanent=True,
    )


# --- a request with retries ----------------------------------------------------------------------


def fetch_answer(
    url: str,
    *,
    session: requests.Session,
    params: dict | None = None,
    method: str = "GET",
    timeout: float | None = None,
    attempts: int = RETRY_ATTEMPTS,
) -> Answer:
    """The source's answer to one request, its body read (capped) only for a 200 to
    a GET. Transient failures are tried again (see the module's docstring); when
    they outlast `attempts`, SourceGaveUp says the last one. A permanent failure
    (a redirect off the source, a body over the cap) raises SourceHTTPError with
    `permanent` at once. Any other status is the caller's to judge."""
    wait_s = float(settings.REFINERY_HTTP_RETRY_WAIT_S)
    for attempt in range(1, attempts + 1):
        try:
            with open_url(
                url, session=session, method=method, params=params, timeout=timeout
            ) as response:
                status = response.status_code
                if status == 429 or status >= 500:
                    reason = f"{url}: {status_text(status)}"
                    pause = parse_retry_after(response.headers.get("Retry-After"), default=0.0)
                else:
                    body = read_body(response, url) if status == 200 and method == "GET" else b""
                    return Answer(status, content_type(response), body)
        except SourceHTTPError as error:
            if error.permanent:
                raise
            reason, pause = error.reason, 0.0
        if attempt < attempts:
            time.sleep(max(pause, min(wait_s * 2 ** (attempt - 1), MAX_RETRY_WAIT_S)))
    raise SourceGaveUp(f"{reason} (gave up after {attempts} attempts)")
