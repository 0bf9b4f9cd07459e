"""The benchmarks' HTTP client against a local HTTP server: what it sends and what it
hands back, over a connection the server keeps or closes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from bench.sender import Session, encoded


class Echo(BaseHTTPRequestHandler):
    """Answers with what it got; `/close` also ends the connection, as gunicorn's
    sync workers do after every answer."""

    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[tuple[str, str, str, bytes]]] = []

    def _answer(self, body: bytes) -> None:
        self.seen.append((self.command, self.path, self.headers["Content-Type"] or "", body))
        status = 404 if self.path.startswith("/missing") else 200
        reply = json.dumps({"method": self.command, "path": self.path, "got": body.decode()})
        self.send_response(status)
        self.send_header("Content-Length", str(len(reply)))
        if self.path.startswith("/close"):
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(reply.encode())

    def do_POST(self) -> None:
        self._answer(self.rfile.read(int(self.headers["Content-Length"])))

    def do_GET(self) -> None:
        self._answer(b"")

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    Echo.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_posts_and_gets_arrive_as_sent_and_answers_come_back_whole(server: str) -> None:
    with Session() as session:
        posted = session.post(f"{server}/hook", json={"a": 1}, headers={"X-T": "1"})
        raw = session.post(f"{server}/hook", data=encoded({"b": [2]}))
        got = session.get(f"{server}/q?x=1")
    assert posted.status_code == 200 and posted.json()["got"] == '{"a": 1}'
    assert raw.json()["got"] == '{"b": [2]}'
    assert got.json() == {"method": "GET", "path": "/q?x=1", "got": ""}
    assert [s[:3] for s in Echo.seen] == [
        ("POST", "/hook", "application/json"),
        ("POST", "/hook", "application/json"),
        ("GET", "/q?x=1", ""),
    ]


def test_a_connection_the_server_closes_is_opened_again_for_the_next_call(server: str) -> None:
    with Session() as session:
        answers = [session.post(f"{server}/close/{i}", data=b"{}") for i in range(5)]
    assert [a.json()["path"] for a in answers] == [f"/close/{i}" for i in range(5)]


def test_an_error_status_is_raised_on_request_and_not_before(server: str) -> None:
    with Session() as session:
        missing = session.get(f"{server}/missing")
        assert missing.status_code == 404
        with pytest.raises(RuntimeError, match="HTTP 404"):
            missing.raise_for_status()
        session.get(f"{server}/there").raise_for_status()


def test_only_plain_http_urls_are_taken() -> None:
    with pytest.raises(ValueError, match="plain http"):
        Session().get("https://127.0.0.1:1/x")
