"""Downloads of results: one way for every result (an index, an archive, a FASTQ,
a quantification's files, a dataset's matrix).

Local storage streams the file through the refinery; S3 answers with a redirect
to a presigned URL that expires after REFINERY_DOWNLOAD_URL_EXPIRES_S. Either
way the answer carries the file's SHA-256 as the database records it
(`X-Checksum-SHA256`, and `Digest: sha-256=<base64>` for tools that check it).
Who may download: authenticated users, or anyone when REFINERY_PUBLIC_DOWNLOADS
says the results are public (lab runs are not, by default).
"""

from __future__ import annotations

import base64

from django.conf import settings
from django.http import FileResponse, HttpResponse, HttpResponseRedirect
from rest_framework.exceptions import NotAuthenticated
from rest_framework.request import Request

from common.models import ComputedFile
from common.storage import LocalStorage, StorageError, permanent_storage


def check_may_download(request: Request) -> None:
    """NotAuthenticated (401) unless the user may download results."""
    if settings.REFINERY_PUBLIC_DOWNLOADS:
        return
    if not (request.user and request.user.is_authenticated):
        raise NotAuthenticated(
            "downloads need a user: log in, or send a token (Authorization: Token …); "
            "an operator can make results public with REFINERY_PUBLIC_DOWNLOADS=1"
        )


def download_response(computed: ComputedFile, filename: str | None = None) -> HttpResponse:
    """The file itself (local storage) or a redirect to it (S3)."""
    storage = permanent_storage()
    if isinstance(storage, LocalStorage):
        try:
            handle = storage.path(computed.key).open("rb")
        except (OSError, StorageError):
            return HttpResponse(
                f"result {computed.pk} is recorded but its file is missing from storage: "
                "tell the refinery's operator",
                status=410,
                content_type="text/plain",
            )
        response = FileResponse(handle, as_attachment=True, filename=filename or computed.filename)
    else:
        response = HttpResponseRedirect(
            storage.url(computed.key, expires_s=settings.REFINERY_DOWNLOAD_URL_EXPIRES_S)
        )
    response["X-Checksum-SHA256"] = computed.sha256
    digest = base64.b64encode(bytes.fromhex(computed.sha256)).decode()
    response["Digest"] = f"sha-256={digest}"
    return response
