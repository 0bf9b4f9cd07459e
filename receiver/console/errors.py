"""What a console page shows when something fails: a page with a banner, never a
stack trace or the JSON envelope."""

from __future__ import annotations

import logging

import redis
from flask import Response, render_template, request
from werkzeug.exceptions import HTTPException

from receiver.api.errors import ApiError, envelope
from receiver.console.blueprint import bp
from receiver.store.retry import CommitConflict

log = logging.getLogger(__name__)
UNAVAILABLE = "The store (Redis) is unavailable: what is shown may be missing; retrying."


def _wants_json() -> bool:
    return request.path.endswith(".json")


def _store_down(exc: Exception) -> tuple[Response | str, int]:
    log.error("store unavailable: %s", exc.__class__.__name__, extra={"error": str(exc)[:300]})
    if _wants_json():
        return envelope(503, UNAVAILABLE), 503
    return render_template("problem.html", title="Store unavailable", banner=UNAVAILABLE), 503


def _api_error(exc: ApiError) -> tuple[Response | str, int]:
    if _wants_json():
        return envelope(exc.code, exc.message, exc.errors), exc.code
    page = render_template(
        "problem.html", title=str(exc.code), message=exc.message, errors=exc.errors
    )
    return page, exc.code


def _http_error(exc: HTTPException) -> tuple[Response | str, int]:
    code = exc.code or 500
    if _wants_json():
        return envelope(code, exc.name), code
    message = "Not allowed: sign in with the admin token." if code == 403 else exc.name
    return render_template("problem.html", title=str(code), message=message), code


def secure_headers(response: Response) -> Response:
    """No inline script or style runs, nothing frames the console, pages are not cached."""
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if response.mimetype in ("text/html", "application/json"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


bp.register_error_handler(redis.RedisError, _store_down)
bp.register_error_handler(CommitConflict, _store_down)
bp.register_error_handler(ApiError, _api_error)
bp.register_error_handler(HTTPException, _http_error)
bp.after_request(secure_headers)
