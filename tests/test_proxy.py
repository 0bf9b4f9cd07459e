"""Slow clients cannot starve the receiver behind the shipped nginx: gunicorn with its
shipped settings, nginx with `deploy/nginx/receiver.conf`, and clients that send
half a request and wait, or trickle a body a byte a second."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from tests.conftest import READER, TOKENS_ENV, WEBHOOK, isolate_alert
from tests.servers import Nginx, Receiver, RedisServer

pytestmark = pytest.mark.redis

STALLED = 50
DEADLINE_S = 5.0
"""Generous against a loaded machine; a starved receiver answers nothing for its
whole 60s worker timeout."""


@pytest.fixture
def proxied() -> Iterator[tuple[Receiver, Nginx]]:
    store = RedisServer().start()
    receiver = Receiver({**TOKENS_ENV, "REDIS_URL": store.url}, workers=2).start()
    nginx = Nginx.receiver_proxy(receiver.url.removeprefix("http://"))
    try:
        yield receiver, nginx.start()
    finally:
        nginx.stop()
        receiver.stop()
        store.stop()


def stall(port: int, count: int, what: bytes) -> list[socket.socket]:
    """`count` connections that each send `what` and then nothing."""
    held = []
    for _ in range(count):
        conn = socket.create_connection(("127.0.0.1", port), timeout=5)
        conn.sendall(what)
        held.append(conn)
    return held


HALF_HEADERS = b"POST /webhook/alertmanager HTTP/1.1\r\nHost: x\r\nContent-Le"
HALF_BODY = (
    b"POST /webhook/alertmanager HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b'Content-Length: 4000\r\n\r\n{"status": "firing", '
)


def test_stalled_and_trickling_clients_do_not_starve_the_receiver(
    proxied: tuple[Receiver, Nginx],
) -> None:
    """50 half requests held open and 10 bodies trickled a byte a second: through
    nginx the webhook and /healthz still answer, and the isolation is applied."""
    _, nginx = proxied
    held = stall(nginx.port, STALLED // 2, HALF_HEADERS) + stall(
        nginx.port, STALLED // 2, HALF_BODY
    )
    trickling = stall(nginx.port, 10, HALF_BODY)
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(1.0):
            for conn in trickling:
                with contextlib.suppress(OSError):
                    conn.sendall(b" ")

    dripper = threading.Thread(target=trickle, daemon=True)
    dripper.start()
    try:
        time.sleep(1.0)  # let every stalled connection reach the proxy
        for n in range(5):
            health = requests.get(f"{nginx.url}/healthz", timeout=DEADLINE_S)
            assert health.status_code == 200
            body = isolate_alert(f"t{n}")
            hook = requests.post(
                f"{nginx.url}/webhook/alertmanager", json=body, headers=WEBHOOK, timeout=DEADLINE_S
            )
            assert hook.status_code == 200, hook.text
            assert hook.json()["accepted"] == 1
        # Five tenants known: the guard's cap (20%) isolates the first alone.
        tenant = requests.get(f"{nginx.url}/api/v1/tenants/t0", headers=READER, timeout=5)
        assert tenant.json()["breaker"]["state"] == "open"
    finally:
        stop.set()
        dripper.join()
        for conn in held + trickling:
            conn.close()


def test_without_the_proxy_a_few_stalled_clients_do_starve_sync_workers(
    proxied: tuple[Receiver, Nginx],
) -> None:
    """Why nginx is required: straight to gunicorn, as many half requests as workers
    leave /healthz unanswered."""
    receiver, _ = proxied
    port = int(receiver.url.rsplit(":", 1)[1])
    held = stall(port, 4, HALF_BODY)
    try:
        time.sleep(0.5)
        with pytest.raises(requests.exceptions.Timeout):
            requests.get(f"{receiver.url}/healthz", timeout=2)
    finally:
        for conn in held:
            conn.close()
