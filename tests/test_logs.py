"""Logs: one JSON object per line, request and tenant context, secrets redacted."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from gunicorn.config import Config

from receiver import logs
from receiver.api import errors
from tests.conftest import WEBHOOK_TOKEN

SECRET = "pd-routing-key-0123456789abcdef"


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """Everything logged through our handler during the test, as text."""
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = logs.configure("DEBUG", secrets=[WEBHOOK_TOKEN, SECRET])
    handler.setStream(stream)  # type: ignore[attr-defined]
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def entries(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_one_json_object_per_line_with_extras(lines: io.StringIO) -> None:
    """Level, logger, message, and the tenant and incident passed in `extra`."""
    log = logging.getLogger("receiver.test")
    log.info("breaker %s -> %s", "closed", "open", extra={"tenant_id": "acme"})
    log.warning("multi\nline", extra={"incident_id": "INC-20270115-0001", "tenant_id": None})
    first, second = entries(lines)
    assert first["level"] == "info" and first["logger"] == "receiver.test"
    assert first["message"] == "breaker closed -> open" and first["tenant_id"] == "acme"
    assert first["ts"].endswith("+00:00")
    assert second["message"] == "multi\nline" and second["incident_id"] == "INC-20270115-0001"
    assert "tenant_id" not in second and "request_id" not in second


def test_exception_text_is_included(lines: io.StringIO) -> None:
    """A logged exception carries its traceback in `exc`, still on one line."""
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("receiver.test").exception("unhandled error")
    (entry,) = entries(lines)
    assert entry["level"] == "error"
    assert "Traceback" in entry["exc"] and "ValueError: boom" in entry["exc"]


def test_request_id_inside_a_request_matches_the_response(lines: io.StringIO) -> None:
    """Inside a request, each line carries the id the response header returns."""
    app = Flask(__name__)

    @app.get("/")
    def index() -> str:
        logging.getLogger("receiver.test").info("inside")
        return "ok"

    errors.register(app)
    response = app.test_client().get("/", headers={"X-Request-ID": "req-42"})
    (entry,) = entries(lines)
    assert entry["request_id"] == "req-42" == response.headers["X-Request-ID"]


@pytest.mark.parametrize(
    ("text", "leaked"),
    [
        (f"webhook token was {WEBHOOK_TOKEN}", WEBHOOK_TOKEN),
        (f"payload {{'routing_key': '{SECRET}'}}", SECRET),
        ("Authorization: Bearer abcdefgh12345678", "abcdefgh12345678"),
        ("sent Bearer zyxwvuts98765432== upstream", "zyxwvuts98765432"),
        ("smtp login password=hunter2-hunter2 refused", "hunter2-hunter2"),
        ('{"routing_key": "R0123456789ABCDEF0123456789ABCDEF"}', "R0123456789ABCDEF"),
        ("connecting to redis://:s3cr3t-pass@redis:6379/0", "s3cr3t-pass"),
        ("SMTP_PASSWORD=correct-horse", "correct-horse"),
    ],
)
def test_secrets_are_redacted(lines: io.StringIO, text: str, leaked: str) -> None:
    """Configured secret values, bearer credentials, key/password pairs and URL
    passwords never reach the log."""
    logging.getLogger("receiver.test").info("%s", text)
    output = lines.getvalue()
    assert leaked not in output and logs.REDACTED in output


def test_ordinary_text_is_left_alone() -> None:
    """Ids and the words 'bearer token' are not secrets."""
    redactor = logs.Redactor(["short", "a-long-enough-secret"])
    text = "missing or invalid bearer token; request_id=0123456789abcdef0123456789abcdef short"
    assert redactor.redact(text) == text


def test_secrets_in_tracebacks_and_extras_are_redacted(lines: io.StringIO) -> None:
    """A secret inside an exception message or an extra field is blanked too."""
    try:
        raise RuntimeError(f"PagerDuty refused key {SECRET}")
    except RuntimeError as exc:
        logging.getLogger("receiver.test").exception("send failed", extra={"error": str(exc)})
    output = lines.getvalue()
    assert SECRET not in output
    (entry,) = entries(lines)
    assert logs.REDACTED in entry["exc"] and logs.REDACTED in entry["error"]


def test_secrets_added_later_are_redacted(lines: io.StringIO) -> None:
    """Secrets known only after start-up (notifier settings) can be added."""
    logs.add_secrets(["smtp-password-added-late", None])
    logging.getLogger("receiver.test").info("login with smtp-password-added-late")
    assert "smtp-password-added-late" not in lines.getvalue()


def test_unknown_level_is_refused() -> None:
    """A typo in LOG_LEVEL fails at start-up instead of logging nothing."""
    with pytest.raises(ValueError, match="unknown log level"):
        logs.configure("LOUD")


class _Response:
    status = "200 OK"
    headers = (("Content-Type", "application/json"), ("X-Request-ID", "req-7"))
    sent = 42


def test_gunicorn_access_line_is_json() -> None:
    """gunicorn's access log: one JSON line with method, path, status, time, request id."""
    cfg = Config()
    cfg.set("accesslog", "-")
    logger = logs.GunicornLogger(cfg)
    stream = io.StringIO()
    for handler in logger.access_log.handlers:
        handler.setStream(stream)
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/webhook/alertmanager",
        "QUERY_STRING": "token=should-not-appear",
        "REMOTE_ADDR": "10.0.0.7",
        "HTTP_USER_AGENT": "Alertmanager/0.27.0",
    }
    logger.access(_Response(), None, environ, timedelta(milliseconds=12.5))
    (entry,) = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert (
        entry["logger"] == "gunicorn.access"
        and entry["message"] == "POST /webhook/alertmanager 200"
    )
    assert entry["status"] == 200 and entry["duration_ms"] == 12.5 and entry["bytes"] == 42
    assert entry["request_id"] == "req-7" and entry["user_agent"] == "Alertmanager/0.27.0"
    assert "should-not-appear" not in stream.getvalue()


def test_values_orjson_refuses_are_still_logged(lines: io.StringIO) -> None:
    """An integer past 64 bits, a dict with non-string keys, a datetime and an
    object: each line is still one JSON object, the odd values as `str()` gives them."""
    from dataclasses import dataclass
    from datetime import UTC, datetime

    @dataclass
    class Thing:
        name: str

    log = logging.getLogger("receiver.test")
    log.info("big", extra={"count": 2**70})
    log.info("keys", extra={"tally": {1: "one"}})
    at = datetime(2027, 1, 15, 8, 0, tzinfo=UTC)
    log.info("odd", extra={"at": at, "thing": Thing("x"), "what": object()})
    big, keyed, odd = entries(lines)
    assert big["count"] == 2**70
    assert keyed["tally"] == {"1": "one"}
    assert odd["at"] == str(at) and odd["thing"].endswith("Thing(name='x')")
    assert odd["what"].startswith("<object object at")
