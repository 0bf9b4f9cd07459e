"""Liveness and readiness probes (no auth: they reveal nothing but health)."""

from __future__ import annotations

import redis
from flask import Blueprint, Response, jsonify

from receiver.api.deps import get_services, now
from receiver.api.errors import REFUSING

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """The process is up; says nothing about Redis."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready when Redis answers and takes a write (a tiny one that expires); 503
    otherwise, so a load balancer routes elsewhere."""
    services = get_services()
    detail: dict[str, object] = {"embedded_store": services.embedded}
    try:
        services.store.ping()
        last = services.store.watchdog_last_seen()
        services.store.probe_write(now())
    except REFUSING as exc:
        detail["redis"] = f"refusing writes: {exc.__class__.__name__}"
        return jsonify({"status": "unavailable", "detail": detail}), 503
    except redis.RedisError as exc:
        detail["redis"] = f"unavailable: {exc.__class__.__name__}"
        return jsonify({"status": "unavailable", "detail": detail}), 503
    detail["redis"] = "ok"
    detail["watchdog_last_seen_at"] = last
    detail["watchdog_age_s"] = None if last is None else round(now() - last, 3)
    return jsonify({"status": "ok", "detail": detail}), 200
