"""The benchmarks' HTTP client: the standard library's `http.client`, one connection
per thread and per server, bodies encoded before the clock starts.

The client shares the two CPUs with the servers it measures, so what it costs is
taken from them. requests spent about 2 ms of CPU per post here, more than the floor
app itself: the floor measured the client, at about a quarter of its real rate.
Alertmanager, the real sender, is a Go process that costs a fraction of that. This
client spends about 0.3 ms per post.

`Session` answers the few calls the benchmarks make of a `requests.Session`: `post`
(`json=` or pre-encoded `data=`) and `get`, each giving `status_code`, `content`,
`text`, `json()` and `raise_for_status()`. gunicorn's sync workers close every
connection after the answer; `http.client` then opens a new one for the next call.
"""

from __future__ import annotations

import http.client
import json as jsonlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Answer:
    status_code: int
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode()

    def json(self) -> Any:
        return jsonlib.loads(self.content)

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise RuntimeError(f"HTTP {self.status_code}: {self.text[:300]}")


def encoded(body: Any) -> bytes:
    """A JSON body as sent: encode a benchmark's bodies with this before timing."""
    return jsonlib.dumps(body).encode()


class Session:
    """Plain HTTP to one or more servers; not shared between threads."""

    def __init__(self, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self._connections: dict[tuple[str, int], http.client.HTTPConnection] = {}

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()

    def post(
        self,
        url: str,
        json: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Answer:
        body = data if data is not None else encoded(json)
        sent = {"Content-Type": "application/json", **(headers or {})}
        return self.request("POST", url, body, sent, timeout)

    def get(
        self, url: str, headers: dict[str, str] | None = None, timeout: float | None = None
    ) -> Answer:
        return self.request("GET", url, None, headers or {}, timeout)

    def request(
        self,
        method: str,
        url: str,
        body: bytes | None,
        headers: dict[str, str],
        timeout: float | None = None,
    ) -> Answer:
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"plain http://host:port URLs only: {url}")
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        connection = self._connection(parts.hostname, parts.port, timeout)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return Answer(response.status, response.read())
        except Exception:
            connection.close()
            raise

    def _connection(
        self, host: str, port: int, timeout: float | None
    ) -> http.client.HTTPConnection:
        connection = self._connections.get((host, port))
        if connection is None:
            connection = http.client.HTTPConnection(host, port, timeout=self.timeout)
            self._connections[(host, port)] = connection
        connection.timeout = timeout if timeout is not None else self.timeout
        if connection.sock is not None:
            connection.sock.settimeout(connection.timeout)
        return connection
