"""One error envelope for every error, and the request id that ties it to our logs.

4xx only for the client's own fault. Alertmanager retries a 5xx at once with back-off
but a 4xx only at the group's next interval (minutes for some routes), so anything
that is our fault (Redis down, a bug) answers 5xx and is retried promptly.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import redis
from flask import Flask, Response, g, has_request_context, jsonify, request
from werkzeug.exceptions import HTTPException

from receiver import logs
from receiver.logs import REQUEST_ID_HEADER
from receiver.store.retry import CommitConflict

log = logging.getLogger(__name__)

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
REFUSING = (redis.exceptions.OutOfMemoryError, redis.exceptions.ReadOnlyError)
"""A Redis that answers but refuses writes (maxmemory reached, a demoted primary): our
fault, not the client's, so 503 and Alertmanager retries."""


class ApiError(Exception):
    def __init__(
        self, code: int, message: str, errors: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.errors = errors if errors is not None else {}
        self.headers = headers or {}


def request_id() -> str:
    rid: str | None = g.get("request_id")
    if rid is None:
        supplied = request.headers.get(REQUEST_ID_HEADER, "")
        rid = supplied if _REQUEST_ID.fullmatch(supplied) else uuid.uuid4().hex
        g.request_id = rid
    return rid


def envelope(code: int, message: str, errors: Any = None) -> Response:
    response = jsonify(
        {
            "status": "error",
            "code": code,
            "message": message,
            "errors": errors if errors is not None else {},
            "request_id": request_id(),
        }
    )
    response.status_code = code
    return response


def _api_error(exc: ApiError) -> Response:
    response = envelope(exc.code, exc.message, exc.errors)
    response.headers.update(exc.headers)
    return response


def _http_error(exc: HTTPException) -> Response:
    code = exc.code or 500
    message = exc.description if code < 500 else "internal error"
    response = envelope(code, message or exc.name)
    if code == 405 and exc.get_response().headers.get("Allow"):
        response.headers["Allow"] = exc.get_response().headers["Allow"]
    return response


def _store_error(exc: Exception) -> Response:
    what = "refusing writes" if isinstance(exc, REFUSING) else "unavailable"
    log.error("store %s: %s", what, exc.__class__.__name__, extra={"error": str(exc)[:300]})
    response = envelope(503, "store unavailable; retry later")
    response.headers["Retry-After"] = "5"
    return response


def _unexpected(exc: Exception) -> Response:
    log.exception("unhandled error")
    return envelope(500, "internal error")


def _set_request_id(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = request_id()
    return response


def _log_context() -> dict[str, Any]:
    return {"request_id": request_id()} if has_request_context() else {}


def register(app: Flask) -> None:
    if _log_context not in logs.CONTEXT:
        logs.CONTEXT.append(_log_context)
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(redis.ResponseError, _unexpected)
    for refusing in REFUSING:
        app.register_error_handler(refusing, _store_error)
    app.register_error_handler(redis.RedisError, _store_error)
    app.register_error_handler(CommitConflict, _store_error)
    app.register_error_handler(Exception, _unexpected)
    app.after_request(_set_request_id)
