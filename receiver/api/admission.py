"""`GET /api/v1/admission`: the deny-list feed. Every tenant not fully admitted, in one
`HGETALL`, with an `ETag` so a gateway polling each interval mostly gets a 304, and
an optional bounded long poll (`?wait=`) that answers as soon as the list changes.

A long poll holds one sync worker while it waits: meant for a few relays, not for
every gateway of a fleet (those poll conditionally once per interval)."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, jsonify, request
from marshmallow import Schema, fields, validate

from receiver.api.auth import Role, require
from receiver.api.body import load_query
from receiver.api.deps import get_services, now
from receiver.config import Enforcement
from receiver.gate import FeedEntry, entries, feed_version, next_change_at
from receiver.services import Services

bp = Blueprint("admission", __name__, url_prefix="/api/v1")
MAX_WAIT_S = 30.0
POLL_INTERVAL_S = 0.1
"""How often a long poll checks the list's version (one `HGET`)."""


class FeedQuery(Schema):
    wait = fields.Float(load_default=0.0, validate=validate.Range(min=0, max=MAX_WAIT_S))


def _read(services: Services, at: float) -> tuple[int, list[FeedEntry], str]:
    deny_list = services.store.admission.read()
    listed = entries(deny_list.breakers, at, services.settings.breaker)
    version = feed_version(deny_list.version, listed, services.settings.enforcement)
    return deny_list.version, listed, version


def _entry(e: FeedEntry, shadow: bool) -> dict[str, Any]:
    return {
        "tenant_id": e.tenant_id,
        "state": e.state.value,
        "allowed_percent": 100.0 if shadow else e.allowed_percent,
        "would_allow_percent": e.allowed_percent,
        "retry_after_s": e.retry_after_s,
        "until": e.until,
    }


def _not_modified(version: str) -> Response:
    response = Response(status=304)
    response.set_etag(version)
    return response


@bp.get("/admission")
@require(Role.READ)
def feed() -> Response:
    """The deny-list; `If-None-Match` with the current version answers 304."""
    wait_s = load_query(FeedQuery())["wait"]
    services = get_services()
    at = now()
    counter, listed, version = _read(services, at)
    known = request.if_none_match
    if wait_s > 0 and known.contains(version):
        deadline = time.monotonic() + wait_s
        while known.contains(version) and time.monotonic() < deadline:
            time.sleep(min(POLL_INTERVAL_S, max(0.0, deadline - time.monotonic())))
            due = next_change_at(listed)
            at = now()
            if services.store.admission.version() != counter or (due is not None and at >= due):
                counter, listed, version = _read(services, at)
    if known.contains(version):
        return _not_modified(version)
    shadow = services.settings.enforcement is Enforcement.SHADOW
    response = jsonify(
        {
            "version": version,
            "enforcement": services.settings.enforcement.value,
            "generated_at": at,
            "tenants": [_entry(e, shadow) for e in listed],
        }
    )
    response.set_etag(version)
    return response
