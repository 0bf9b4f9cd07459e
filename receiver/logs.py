"""Logs as one JSON object per line on stderr, with secrets redacted.

Each line has `ts` (UTC), `level`, `logger`, `message`; `request_id` inside a
request (the one in the `X-Request-ID` response header); `tenant_id`,
`incident_id` and any other `extra=` values; `exc` with the traceback.

Redaction runs before formatting, on the message, the traceback and string
extras: every registered secret value (`add_secrets`), any `Bearer <credential>`,
`password=`/`routing_key: ...`-style pairs, and the password of a URL.
`GunicornLogger` puts gunicorn's own lines in the same shape.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import orjson
from gunicorn import glogging

REQUEST_ID_HEADER = "X-Request-ID"
REDACTED = "[redacted]"
MIN_SECRET_LENGTH = 6
"""Shorter values are not redacted by value: they would blank ordinary words."""

_AUTHORIZATION = re.compile(
    r"(?i)\b(authorization[\"']?\s*[:=]\s*[\"']?)(?:[a-z]+\s+)?[^\s\"',;}]+"
)
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9\-._~+/]{8,}=*")
_PAIR = re.compile(
    r"(?i)(?<![A-Za-z0-9])"
    r"((?:routing|integration|api|secret|access)[_-]?key|password|passwd|pwd|secret|token)"
    r"([\"']?\s*[:=]\s*[\"']?)"
    r"(?!\[redacted\])([^\"'\s,;&}]+)"
)
_MAYBE_SECRET = re.compile(r"(?i)bearer|authorization|key|pass|pwd|secret|token|://")
"""Cheap first look: text without any of these needs none of the patterns above."""
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*:)([^@\s/]+)(@)")

_RECORD_FIELDS = frozenset(
    {*vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None)), "message", "asctime"}
)


class Redactor(logging.Filter):
    """Rewrites a record's message, traceback and string extras without secrets."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()
        self.add(secrets)

    def add(self, secrets: Iterable[str | None]) -> None:
        fresh = {s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}
        with self._lock:
            # Longest first, so a secret containing another is blanked whole.
            self._secrets = tuple(sorted(set(self._secrets) | fresh, key=len, reverse=True))

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        if not _MAYBE_SECRET.search(text):
            return text
        text = _AUTHORIZATION.sub(rf"\g<1>{REDACTED}", text)
        text = _BEARER.sub(rf"\g<1>{REDACTED}", text)
        text = _PAIR.sub(rf"\g<1>\g<2>{REDACTED}", text)
        return _URL_PASSWORD.sub(rf"\g<1>{REDACTED}\g<3>", text)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and isinstance(value, str):
                setattr(record, key, self.redact(value))
        return True


REDACTOR = Redactor()
"""The process's redactor: every handler set up here uses it."""


def add_secrets(secrets: Iterable[str | None]) -> None:
    """Redact these values from every log line of this process from now on."""
    REDACTOR.add(secrets)


_PASS = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME
"""Dataclasses and datetimes as `str()` gives them, as the standard library's
`default=str` did."""

CONTEXT: list[Callable[[], dict[str, Any]]] = []
"""Fields every line carries where they apply: the web app adds the request id."""


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for context in CONTEXT:
            entry.update(context())
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_") and value is not None:
                entry[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        try:
            return orjson.dumps(entry, default=str, option=_PASS).decode()
        except TypeError:  # what orjson refuses (an integer past 64 bits)
            return json.dumps(entry, default=str, ensure_ascii=False)


def _ours(handler: logging.Handler) -> None:
    handler.setFormatter(JsonFormatter())
    if REDACTOR not in handler.filters:
        handler.addFilter(REDACTOR)


def configure(level: str | int = "INFO", secrets: Iterable[str | None] = ()) -> logging.Handler:
    """Log JSON lines to stderr from the root logger at `level`. Calling it again
    replaces the handler it installed; handlers installed by others stay.

    A line carries none of the caller's file, line, thread or process, so the logging
    module is told not to look them up (its HOWTO's "Optimization": a storm logs a few
    lines per tenant)."""
    if isinstance(level, str):
        name = level.strip().upper()
        if not isinstance(logging.getLevelName(name), int):
            raise ValueError(f"unknown log level {level!r}")
        level = name
    add_secrets(secrets)
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_blast_radius", False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(sys.stderr)
    handler._blast_radius = True  # type: ignore[attr-defined]
    _ours(handler)
    root.addHandler(handler)
    root.setLevel(level)
    return handler


class GunicornLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's error log and access log as our JSON lines (`logger_class`)."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for handler in [*self.error_log.handlers, *self.access_log.handlers]:
            _ours(handler)

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not self.cfg.accesslog and not self.cfg.logconfig_dict:
            return
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        headers = {name.lower(): value for name, value in resp.headers}
        method, path = environ.get("REQUEST_METHOD", "-"), environ.get("PATH_INFO", "-")
        fields = {
            "remote_addr": environ.get("REMOTE_ADDR"),
            "method": method,
            "path": path,
            "query": environ.get("QUERY_STRING") or None,
            "status": int(status),
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 3),
            "user_agent": environ.get("HTTP_USER_AGENT"),
            "request_id": headers.get(REQUEST_ID_HEADER.lower()),
        }
        try:
            self.access_log.info("%s %s %s", method, path, status, extra=fields)
        except Exception:
            self.error("access log failed", exc_info=True)
