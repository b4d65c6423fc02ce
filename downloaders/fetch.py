"""Fetching a file from its source URL (https, http, ftp or file) into a local
staging file, with retries, backoff and resumption.

Transient failures (a 5xx answer, a timeout, a connection dropped mid-file) are
retried with exponential backoff, resuming from the bytes already fetched where
the server allows it. Permanent ones (404, 403, 410, a missing file, a redirect
the source policy refuses, more bytes than the source said the file has) fail
at once with `no_retry`, since another attempt cannot help.

HTTP goes through `common.source_http`: redirects stay on the source, the bytes
written are the bytes served (never decoded), and a download stops at its
`max_size` (the size the source gave) before it writes a byte past it.
"""

from __future__ import annotations

import contextlib
import ftplib
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from django.conf import settings
from retrying import retry

from common.chunks import CHUNK
from common.source_http import (
    SourceHTTPError,
    declared_length,
    new_session,
    open_url,
    status_text,
    too_large_announced,
    write_body,
)
from runner.pipeline import JobError

logger = logging.getLogger(__name__)

ATTEMPTS = 4
PERMANENT_HTTP = {400, 401, 403, 404, 405, 410, 451}


class TransientError(Exception):
    """Worth another try."""


Progress = Callable[[int], None]


def fetch_url(
    url: str,
    destination: Path,
    *,
    expected_size: int | None = None,
    max_size: int | None = None,
    attempts: int = ATTEMPTS,
    backoff_ms: int | None = None,
    progress: Progress | None = None,
) -> Path:
    """Fetch `url` to `destination`. The file may not grow past `max_size` (default:
    `expected_size`, when the source gave one). Raises JobError, naming the URL and
    what happened."""
    if backoff_ms is None:  # retrying waits twice the multiplier first, then doubles
        backoff_ms = int(settings.REFINERY_HTTP_RETRY_WAIT_S * 500)
    scheme = urlsplit(url).scheme
    fetchers = {"http": _fetch_http, "https": _fetch_http, "ftp": _fetch_ftp, "file": _fetch_file}
    if scheme not in fetchers:
        raise JobError(f"{url}: unsupported URL scheme {scheme!r}", no_retry=True)
    limit = max_size if max_size is not None else expected_size
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.unlink(missing_ok=True)
    last_error: list[str] = []

    def remember(error: Exception) -> bool:
        if isinstance(error, TransientError):
            last_error[:] = [str(error)]
            logger.warning("%s; retrying", error)
            return True
        return False

    @retry(
        stop_max_attempt_number=attempts,
        wait_exponential_multiplier=backoff_ms,
        wait_exponential_max=30_000,
        retry_on_exception=remember,
    )
    def attempt() -> None:
        fetchers[scheme](url, destination, progress, limit)
        size = destination.stat().st_size
        if expected_size is not None and size != expected_size:
            if size < expected_size:
                raise TransientError(f"{url}: got {size} of {expected_size} bytes")
            destination.unlink()
            raise JobError(f"{url}: got {size} bytes, {expected_size} expected", no_retry=True)

    try:
        attempt()
    except TransientError:
        destination.unlink(missing_ok=True)
        raise JobError(
            f"{last_error[0] if last_error else url} (gave up after {attempts} attempts)"
        ) from None
    except JobError:
        destination.unlink(missing_ok=True)
        raise
    return destination


def _failed(error: SourceHTTPError) -> Exception:
    """A source's error as this module's: permanent ones end the fetch at once."""
    return (
        JobError(error.reason, no_retry=True) if error.permanent else TransientError(error.reason)
    )


def _fetch_http(url: str, destination: Path, progress: Progress | None, limit: int | None) -> None:
    have = destination.stat().st_size if destination.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        with new_session() as session, open_url(url, session=session, headers=headers) as response:
            status = response.status_code
            if status in PERMANENT_HTTP:
                raise JobError(f"{url}: {status_text(status)}", no_retry=True)
            if status == 416 and have:
                return  # we already have every byte
            if status not in (200, 206):
                raise TransientError(f"{url}: {status_text(status)}")
            resumed = status == 206
            start = have if resumed else 0
            expected = declared_length(response)
            if limit is not None and expected is not None and start + expected > limit:
                raise too_large_announced(url, limit, start + expected)
            with open(destination, "ab" if resumed else "wb") as out:
                received = write_body(
                    response, out, url, limit=limit, already=start, progress=progress
                )
            if expected is not None and received < expected:
                raise TransientError(
                    f"{url}: connection closed after {received} of {expected} bytes"
                )
    except SourceHTTPError as error:
        raise _failed(error) from None


def _fetch_ftp(url: str, destination: Path, progress: Progress | None, limit: int | None) -> None:
    parts = urlsplit(url)
    have = destination.stat().st_size if destination.exists() else 0
    timeout = settings.REFINERY_HTTP_TIMEOUT_S
    ftp = ftplib.FTP(timeout=timeout)
    try:
        # Data connections go to the server's own address, whatever PASV names
        # (ftplib's default, kept explicit: a reply must not point us elsewhere).
        ftp.trust_server_pasv_ipv4_address = False
        ftp.connect(parts.hostname or "", parts.port or 21)
        ftp.login(unquote(parts.username or "anonymous"), unquote(parts.password or ""))
        ftp.voidcmd("TYPE I")
        with open(destination, "ab" if have else "wb") as out:
            written = have

            def write(chunk: bytes) -> None:
                nonlocal written
                if limit is not None and written + len(chunk) > limit:
                    raise JobError(f"{url}: more than the {limit} bytes expected", no_retry=True)
                out.write(chunk)
                written += len(chunk)
                if progress:
                    progress(len(chunk))

            ftp.retrbinary(f"RETR {unquote(parts.path)}", write, CHUNK, rest=have or None)
        with contextlib.suppress(*ftplib.all_errors):
            ftp.quit()
    except ftplib.error_perm as error:
        if _ftp_code(error) == "550":
            raise JobError(f"{url}: FTP reply 550 (no such file)", no_retry=True) from None
        raise TransientError(f"{url}: FTP reply {_ftp_code(error)}") from None
    except (ftplib.error_temp, ftplib.error_reply) as error:
        raise TransientError(f"{url}: FTP reply {_ftp_code(error)}") from None
    except EOFError:
        raise TransientError(f"{url}: FTP connection closed") from None
    except TimeoutError:
        raise TransientError(f"{url}: timed out after {timeout} s") from None
    except OSError as error:
        raise TransientError(f"{url}: cannot connect ({error})") from error
    finally:
        ftp.close()  # after an aborted transfer, without waiting for the server's reply


def _ftp_code(error: Exception) -> str:
    """An FTP reply's code (`550`), without the server's words."""
    code = str(error)[:3]
    return code if code.isdigit() else "that cannot be read"


def _fetch_file(url: str, destination: Path, progress: Progress | None, limit: int | None) -> None:
    source = Path(unquote(urlsplit(url).path))
    if source.resolve() != source:  # the survey recorded the real path: no link on the way
        raise JobError(
            f"{url}: {source} is reached through a link now (to {source.resolve()}), "
            "not the file the survey found: survey its folder again",
            no_retry=True,
        )
    if not source.is_file():
        raise JobError(f"{url}: no such file", no_retry=True)
    if limit is not None and source.stat().st_size > limit:
        raise JobError(f"{url}: more than the {limit} bytes expected", no_retry=True)
    try:
        handle = os.fdopen(os.open(source, os.O_RDONLY | os.O_NOFOLLOW), "rb")
    except OSError as error:
        raise JobError(f"{url}: cannot read {source}: {error.strerror}", no_retry=True) from None
    with handle, open(destination, "wb") as out:
        shutil.copyfileobj(handle, out, CHUNK)
    if progress:
        progress(destination.stat().st_size)
