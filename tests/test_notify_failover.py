"""The notification worker across a Sentinel failover: the primary is killed while the
worker is sending to Slack (a local stand-in), incidents keep opening, and every
notification reaches Slack after the failover from the same worker process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.conftest import TOKENS_ENV, isolate_alert
from tests.notify_fixtures import SLACK_PATH
from tests.servers import ROOT, Receiver, wait_for
from tests.topologies import SentinelGroup
from tests.webhook_load import Delivery, Sender, assert_converged

pytestmark = pytest.mark.e2e

TENANTS = [f"nf-{i}" for i in range(8)]
SPACING_S = 1.5
"""Between one tenant's first alert and the next: past the correlation window, so
each opens an incident of its own (unless retries bunch them up)."""


class Worker:
    """`blast-radius worker` as its own process, in a session of its own."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = {**os.environ, **env}
        self.log = Path(tempfile.mkstemp(prefix="br-worker-", suffix=".log")[1])
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "receiver.cli", "worker"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.running():
            assert self.proc is not None
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
        self.log.unlink(missing_ok=True)


@pytest.fixture
def group() -> Iterator[SentinelGroup]:
    """A Sentinel group of the test's own: its primary is killed."""
    with SentinelGroup() as started:
        yield started


@pytest.fixture
def env(group: SentinelGroup, httpserver: HTTPServer) -> dict[str, str]:
    """Slack is the stand-in; an incident per tenant; updates sent at once."""
    return {
        **TOKENS_ENV,
        "REDIS_URL": group.url,
        "SLACK_WEBHOOK_URL": httpserver.url_for(SLACK_PATH),
        "GUARD_MAX_ISOLATED_PERCENT": "100",
        "INCIDENT_CORRELATION_WINDOW_S": "1",
        "NOTIFY_UPDATE_INTERVAL_S": "0",
        "NOTIFY_BACKOFF_BASE_S": "0.2",
        "NOTIFY_BACKOFF_CAP_S": "1",
        "RECEIVER_SWEEP_INTERVAL_S": "1",
    }


@pytest.fixture
def receiver(env: dict[str, str]) -> Iterator[Receiver]:
    server = Receiver(env).start()
    yield server
    server.stop()


@pytest.fixture
def worker(env: dict[str, str]) -> Iterator[Worker]:
    started = Worker(env).start()
    yield started
    started.stop()


@pytest.mark.parametrize("fault", ["killed", "frozen"])
def test_the_worker_delivers_across_a_failover(
    group: SentinelGroup, receiver: Receiver, worker: Worker, httpserver: HTTPServer, fault: str
) -> None:
    """The primary dies while the worker waits on Slack's answer; incidents open
    before, during and after the failover; every delivery the receiver queued ends
    sent and reached Slack, and the worker was never restarted."""
    received: list[tuple[float, dict[str, Any]]] = []
    sending = threading.Event()
    killed = threading.Event()

    def slack(request: Request) -> Response:
        received.append((time.monotonic(), request.get_json()))
        if len(received) == 1:
            sending.set()
            killed.wait(timeout=30)
        return Response("ok")

    httpserver.expect_request(SLACK_PATH, method="POST").respond_with_handler(slack)
    sender = Sender(receiver.url)
    starts_at = isolate_alert("x")["alerts"][0]["startsAt"]
    fires = [Delivery(t, isolate_alert(t, starts_at=starts_at)) for t in TENANTS]
    first, rest = fires[0], fires[1:]
    deadline = time.monotonic() + 90
    sender.deliver(first, deadline)
    assert sending.wait(timeout=30), f"the worker never called Slack:\n{worker.output()}"

    old = group.kill_primary() if fault == "killed" else group.freeze_primary()
    kill_at = time.monotonic()
    killed.set()
    sender.run(rest, 1 / SPACING_S, threads=len(rest))
    group.wait_failover(old, timeout_s=30)
    assert_converged(fires)

    def all_sent() -> bool:
        items = receiver.api("/notifications?limit=1000", timeout_s=10)["items"]
        bodies = [body for _, body in received]
        return bool(items) and all(
            item["status"] == "sent" and item["payload"] in bodies for item in items
        )

    try:
        wait_for(all_sent, 90, "every notification sent")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\nworker:\n{worker.output()}") from None
    assert worker.running(), f"the worker exited:\n{worker.output()}"
    deliveries = receiver.api("/notifications?limit=1000", timeout_s=10)["items"]
    incidents = receiver.api("/incidents?per_page=500", timeout_s=10)["items"]
    assert {i["id"] for i in incidents} == {d["incident_id"] for d in deliveries}
    after = [at for at, _ in received if at > kill_at]
    assert after, "nothing reached Slack after the kill"
    print(
        f"\nworker across a failover, primary {fault}: {len(incidents)} incidents, "
        f"{len(deliveries)} deliveries, {len(received)} Slack requests; first after the kill "
        f"{after[0] - kill_at:.2f}s, last {after[-1] - kill_at:.2f}s after it"
    )
