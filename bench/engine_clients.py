"""The engines' side of bench/engine_api.py: what a real engine sends, over
http.client (the default: the lightest, since on a small machine the engines'
client takes the cores the API server is measured on) or over requests (as
`manage.py basecall_engine` sends it)."""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlencode, urlsplit

# What a real engine sends (processors/basecalling/remote.py): its batch size and
# version to assign; a failure's reason and flags, form-encoded, to completed.
ASSIGN_BODY = {"batch_size": 1, "version": "dorado bench"}
FAILURE_FORM = {"success": "false", "reason": "bench", "interrupted": "false", "no_retry": "false"}


class LeanEngineClient:
    """An engine's HTTP: one kept-alive connection (http.client), the token header."""

    def __init__(self, server: str, token: str) -> None:
        where = urlsplit(server)
        self.connection = http.client.HTTPConnection(where.hostname, where.port, timeout=60)
        self.token = f"Token {token}"

    def post(self, url: str, json_body: dict | None = None, form: dict | None = None):
        headers = {"Authorization": self.token}
        body = b""
        if json_body is not None:
            body, headers["Content-Type"] = json.dumps(json_body).encode(), "application/json"
        elif form is not None:
            body = urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.connection.request("POST", urlsplit(url).path, body=body, headers=headers)
        answer = self.connection.getresponse()
        return answer.status, answer.read()

    def get(self, path: str) -> int:
        self.connection.request("GET", path)
        answer = self.connection.getresponse()
        answer.read()
        return answer.status


class RequestsEngineClient:
    """An engine's HTTP as manage.py basecall_engine does it (a requests.Session)."""

    def __init__(self, server: str, token: str) -> None:
        import requests

        self.server, self.session = server, requests.Session()
        self.headers = {"Authorization": f"Token {token}"}

    def post(self, url: str, json_body: dict | None = None, form: dict | None = None):
        if not url.startswith("http"):
            url = self.server + url
        answer = self.session.post(url, headers=self.headers, json=json_body, data=form)
        return answer.status_code, answer.content

    def get(self, path: str) -> int:
        return self.session.get(self.server + path).status_code


CLIENTS = {"http.client": LeanEngineClient, "requests": RequestsEngineClient}
