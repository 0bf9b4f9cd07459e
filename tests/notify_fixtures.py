"""Local stand-ins for PagerDuty, Slack and SMTP, and an app wired to them."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from aiosmtpd.controller import Controller
from flask import Flask
from pytest_httpserver import HTTPServer
from rq import SimpleWorker

from receiver import create_app
from receiver.config import NotifySettings, Settings
from receiver.notify import jobs
from receiver.services import Services
from tests.conftest import with_registry
from tests.servers import free_port

PD_PATH = "/v2/enqueue"
SLACK_PATH = "/services/T000/B000/XXXX"
ROUTING_KEY = "R0UTINGKEY00000000000000000000AB"


class Mailbox:
    """An aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


def notify_settings(httpserver: HTTPServer, smtp_port: int, **changes: Any) -> NotifySettings:
    values: dict[str, Any] = {
        "pagerduty_routing_keys": {"default": ROUTING_KEY},
        "pagerduty_events_url": httpserver.url_for(PD_PATH),
        "slack_webhook_url": httpserver.url_for(SLACK_PATH),
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_port,
        "email_to": {"default": ("oncall@example.com",), "platinum": ("vip-desk@example.com",)},
        "timeout_s": 5.0,
        "backoff_base_s": 0.05,
        "backoff_cap_s": 0.5,
        "slack_per_s": 50.0,
        "pagerduty_per_s": 50.0,
    }
    values.update(changes)
    return NotifySettings(**values)


@pytest.fixture
def make_app(settings: Settings, real_redis: redis.Redis, tmp_path: Path) -> Callable[..., Flask]:
    """An app on real Redis with notifications pointed at local servers (real clock)."""

    def make(
        notify: NotifySettings, clock: Callable[[], float] = time.time, **changes: Any
    ) -> Flask:
        tenants = {"p0": "platinum", "g0": "gold", **{f"b{i:02d}": "bronze" for i in range(20)}}
        custom = with_registry(settings, tmp_path, tenants, notify=notify, **changes)
        app = create_app(
            {"SETTINGS": custom, "REDIS_CLIENT": real_redis, "CLOCK": clock, "SWEEPER": False}
        )
        jobs.bind(services(app).hub)
        return app

    return make


def services(app: Flask) -> Services:
    found: Services = app.extensions["blast_radius"]
    return found


def work(app: Flask, until: Callable[[], bool], timeout_s: float = 20.0) -> None:
    """Run the queue (and its scheduler) in this process until `until()` holds."""
    hub = services(app).hub
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        SimpleWorker([hub.queue], connection=hub.queue.connection).work(
            burst=True, with_scheduler=True, logging_level="WARNING"
        )
        if until():
            return
        time.sleep(0.1)
    raise AssertionError("queue did not settle in time")


def requests_to(httpserver: HTTPServer, path: str) -> list[Any]:
    return [req.get_json() for req, _ in httpserver.log if req.path == path]
