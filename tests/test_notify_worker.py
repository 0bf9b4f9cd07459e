"""The notification worker as its own process, and escalation with an injected clock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest
import redis
from flask import Flask
from pytest_httpserver import HTTPServer
from rq import Worker
from rq.registry import StartedJobRegistry
from werkzeug import Request, Response

from receiver.notify import jobs
from tests.conftest import ADMIN, READER, TOKENS_ENV, WEBHOOK, Clock, isolate_alert
from tests.notify_fixtures import PD_PATH, SLACK_PATH, Mailbox, notify_settings, services, work
from tests.servers import RedisServer, wait_for

pytestmark = pytest.mark.redis


def start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "receiver.cli", "worker"],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def children(pid: int) -> list[int]:
    """Direct children of `pid` (rq's work horse runs in a session of its own)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def kill_hard(worker: subprocess.Popen[bytes]) -> None:
    """SIGKILL the worker and its work horse, as a crash or an OOM kill would."""
    for child in children(worker.pid):
        os.kill(child, signal.SIGKILL)
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)


def test_worker_killed_mid_send_delivers_after_restart(
    make_app: Callable[..., Flask],
    httpserver: HTTPServer,
    mailbox: tuple[Mailbox, int],
    redis_server: RedisServer,
    real_redis: redis.Redis,
) -> None:
    """SIGKILL while Slack is answering: after restart the job runs again and is sent."""
    first_arrived = threading.Event()
    release = threading.Event()
    calls: list[float] = []

    def slack(request: Request) -> Response:
        calls.append(time.time())
        if len(calls) == 1:
            first_arrived.set()
            release.wait(timeout=30)
        return Response("ok")

    httpserver.expect_request(SLACK_PATH).respond_with_handler(slack)
    app = make_app(notify_settings(httpserver, mailbox[1], routes={"P2": ("slack",)}))
    app.test_client().post("/webhook/alertmanager", json=isolate_alert("b00"), headers=WEBHOOK)
    env = {
        **TOKENS_ENV,
        "REDIS_URL": redis_server.url,
        "SLACK_WEBHOOK_URL": httpserver.url_for(SLACK_PATH),
        "NOTIFY_ROUTES": "P2=slack",
    }
    worker = start_worker(env)
    try:
        assert first_arrived.wait(timeout=30), "the worker never called Slack"
        kill_hard(worker)
    finally:
        release.set()
    hub = services(app).hub
    [delivery] = hub.deliveries.recent(10, time.time())
    assert delivery.status == "pending"
    # rq notices an abandoned job once its heartbeat lapses (a minute); move past it.
    StartedJobRegistry(queue=hub.queue).cleanup(timestamp=time.time() + 600)
    worker = start_worker(env)
    try:
        wait_for(
            lambda: hub.deliveries.get(delivery.id).status == "sent",  # type: ignore[union-attr]
            30,
            "redelivery after the worker restarted",
        )
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=15)
    assert len(calls) == 2


def platinum_p0_paged(
    make_app: Callable[..., Flask], httpserver: HTTPServer, mailbox: tuple[Mailbox, int]
) -> tuple[Flask, Clock, str]:
    """A P0 incident for a failing platinum tenant, paged to PagerDuty only."""
    httpserver.expect_request(PD_PATH).respond_with_json({"status": "success"}, 202)
    clock = Clock(start=time.time())
    app = make_app(
        notify_settings(httpserver, mailbox[1], routes={"P0": ("pagerduty",)}), clock=clock
    )
    app.test_client().post("/webhook/alertmanager", json=isolate_alert("p0"), headers=WEBHOOK)
    return app, clock, services(app).incidents.board(clock()).open_ids[0]


def test_unacknowledged_p0_escalates(
    make_app: Callable[..., Flask], httpserver: HTTPServer, mailbox: tuple[Mailbox, int]
) -> None:
    """Past its 15-minute response SLA a P0 escalates: timeline, re-page, next target."""
    app, clock, incident_id = platinum_p0_paged(make_app, httpserver, mailbox)
    clock.advance(14 * 60)
    assert jobs.check_escalation(incident_id, 0) == "not due yet"
    clock.advance(61)
    assert jobs.check_escalation(incident_id, 0) == "escalated to level 1"
    assert jobs.check_escalation(incident_id, 0) == "no escalation needed"
    work(app, lambda: len([r for r, _ in httpserver.log]) >= 2)
    incident = app.test_client().get(f"/api/v1/incidents/{incident_id}", headers=READER).get_json()
    assert incident["escalation_level"] == 1
    escalated = [e for e in incident["timeline"] if e["kind"] == "escalated"]
    assert len(escalated) == 1 and "on-call" in escalated[0]["message"]
    pages = [r.get_json() for r, _ in httpserver.log]
    assert [p["event_action"] for p in pages] == ["trigger", "trigger"]
    assert pages[1]["payload"]["custom_details"]["escalation_target"] == "on-call"


def test_acknowledged_incident_does_not_escalate(
    make_app: Callable[..., Flask], httpserver: HTTPServer, mailbox: tuple[Mailbox, int]
) -> None:
    """Acknowledging stops escalation and sends PagerDuty an acknowledge."""
    app, clock, incident_id = platinum_p0_paged(make_app, httpserver, mailbox)
    client = app.test_client()
    clock.advance(300)
    client.post(f"/api/v1/incidents/{incident_id}/acknowledge", headers=ADMIN)
    clock.advance(3600)
    assert jobs.check_escalation(incident_id, 0) == "no escalation needed"
    work(app, lambda: len(httpserver.log) >= 2)
    assert [r.get_json()["event_action"] for r, _ in httpserver.log] == ["trigger", "acknowledge"]


def test_worker_stops_even_before_its_command_channel_is_subscribed(
    real_redis: redis.Redis,
) -> None:
    """A worker that stops before Redis confirmed its command subscription still stops.

    rq's command listener waits up to 60 s for that confirmation and rq bounds its own
    join to 1 s; a client whose thread stop() joins without a bound (redis-py 8.2) holds
    every short-lived worker, `worker --burst` included, for that minute."""
    worker = Worker(["default"], connection=real_redis)
    worker.pubsub = real_redis.pubsub()
    # The state of the race, made certain: the listener runs, nothing is subscribed yet.
    worker.pubsub_thread = worker.pubsub.run_in_thread(
        sleep_time=60, daemon=True, exception_handler=lambda _e, _p, thread: thread.stop()
    )
    stopping = threading.Thread(target=worker.unsubscribe, daemon=True)
    stopping.start()
    stopping.join(timeout=20)
    stopped = not stopping.is_alive()
    worker.pubsub.subscribed_event.set()  # end the listener's wait either way
    worker.pubsub_thread.join(timeout=20)
    assert not worker.pubsub_thread.is_alive()
    assert stopped, "the worker's shutdown waited on its command listener"
