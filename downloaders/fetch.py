"""Fetching a file from its source URL (https, http, ftp or file) into a local
staging file, with retries, backoff and resumption.

Transient failures (a 5xx answer, a timeout, a connection dropped mid-file) are
retried with exponential backoff, resuming from the bytes already fetched where
the server allows it. Permanent ones (404, 403, 410, a missing file) fail at
once with `no_retry`, since another attempt cannot help.
"""

from __future__ import annotations

import ftplib
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

import requests
from django.conf import settings
from retrying import retry

from common.chunks import CHUNK
from runner.pipeline import JobError

logger = logging.getLogger(__name__)

# Reads from a socket go in small pieces: what arrived before a dropped connection is kept,
# and the next attempt resumes after it.
HTTP_CHUNK = 64 * 1024
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
    attempts: int = ATTEMPTS,
    backoff_ms: int = 500,
    progress: Progress | None = None,
) -> Path:
    """Fetch `url` to `destination`. Raises JobError, naming the URL and what happened."""
    scheme = urlsplit(url).scheme
    fetchers = {"http": _fetch_http, "https": _fetch_http, "ftp": _fetch_ftp, "file": _fetch_file}
    if scheme not in fetchers:
        raise JobError(f"{url}: unsupported URL scheme {scheme!r}", no_retry=True)
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
        fetchers[scheme](url, destination, progress)
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


def _fetch_http(url: str, destination: Path, progress: Progress | None) -> None:
    have = destination.stat().st_size if destination.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    timeout = settings.REFINERY_HTTP_TIMEOUT_S
    try:
        with requests.get(url, headers=headers, stream=True, timeout=timeout) as response:
            if response.status_code in PERMANENT_HTTP:
                raise JobError(
                    f"{url}: HTTP {response.status_code} {response.reason}", no_retry=True
                )
            if response.status_code == 416 and have:
                return  # we already have every byte
            if response.status_code >= 300:
                raise TransientError(f"{url}: HTTP {response.status_code} {response.reason}")
            resumed = response.status_code == 206
            expected = response.headers.get("Content-Length")
            received = 0
            with open(destination, "ab" if resumed else "wb") as out:
                for chunk in response.iter_content(HTTP_CHUNK):
                    out.write(chunk)
                    received += len(chunk)
                    if progress:
                        progress(len(chunk))
            if expected is not None and received < int(expected):
                raise TransientError(
                    f"{url}: connection closed after {received} of {expected} bytes"
                )
    except requests.exceptions.ChunkedEncodingError as error:
        raise TransientError(f"{url}: connection broken mid-file ({error})") from error
    except requests.exceptions.Timeout:
        raise TransientError(f"{url}: timed out after {timeout} s") from None
    except requests.exceptions.ConnectionError as error:
        raise TransientError(f"{url}: cannot connect ({_root_cause(error)})") from error


def _fetch_ftp(url: str, destination: Path, progress: Progress | None) -> None:
    parts = urlsplit(url)
    have = destination.stat().st_size if destination.exists() else 0
    timeout = settings.REFINERY_HTTP_TIMEOUT_S
    try:
        with ftplib.FTP(timeout=timeout) as ftp:
            ftp.connect(parts.hostname or "", parts.port or 21)
            ftp.login(unquote(parts.username or "anonymous"), unquote(parts.password or ""))
            ftp.voidcmd("TYPE I")
            with open(destination, "ab" if have else "wb") as out:

                def write(chunk: bytes) -> None:
                    out.write(chunk)
                    if progress:
                        progress(len(chunk))

                ftp.retrbinary(f"RETR {unquote(parts.path)}", write, CHUNK, rest=have or None)
    except ftplib.error_perm as error:
        if str(error).startswith("550"):
            raise JobError(f"{url}: FTP {error}", no_retry=True) from error
        raise TransientError(f"{url}: FTP {error}") from error
    except (ftplib.error_temp, ftplib.error_reply, EOFError) as error:
        raise TransientError(f"{url}: FTP {error or 'connection closed'}") from error
    except TimeoutError:
        raise TransientError(f"{url}: timed out after {timeout} s") from None
    except OSError as error:
        raise TransientError(f"{url}: cannot connect ({error})") from error


def _fetch_file(url: str, destination: Path, progress: Progress | None) -> None:
    source = Path(unquote(urlsplit(url).path))
    if source.resolve() != source:  # the survey recorded the real path: no link on the way
        raise JobError(
            f"{url}: {source} is reached through a link now (to {source.resolve()}), "
            "not the file the survey found: survey its folder again",
            no_retry=True,
        )
    if not source.is_file():
        raise JobError(f"{url}: no such file", no_retry=True)
    try:
        handle = os.fdopen(os.open(source, os.O_RDONLY | os.O_NOFOLLOW), "rb")
    except OSError as error:
        raise JobError(f"{url}: cannot read {source}: {error.strerror}", no_retry=True) from None
    with handle, open(destination, "wb") as out:
        shutil.copyfileobj(handle, out, CHUNK)
    if progress:
        progress(destination.stat().st_size)


def _root_cause(error: BaseException) -> str:
    while error.__cause__ or error.__context__:
        error = error.__cause__ or error.__context__
    return str(error) or type(error).__name__
