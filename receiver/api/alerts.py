"""Stored alerts, for alerts that do not isolate (platform, burn rate, traffic
stopped) as much as for those that do, and the alert pipeline's heartbeat."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify
from marshmallow import Schema, fields, validate

from receiver.alerts import PLATFORM_SCOPE
from receiver.api.auth import Role, require
from receiver.api.body import load_query
from receiver.api.deps import get_services, now
from receiver.api.tenants import checked_tenant_id

bp = Blueprint("alerts", __name__, url_prefix="/api/v1")


class AlertQuery(Schema):
    status = fields.String(load_default=None, validate=validate.OneOf(["firing", "resolved"]))


def _alerts(scope: str) -> list[dict[str, Any]]:
    return alerts_of(scope, load_query(AlertQuery())["status"])


def alerts_of(scope: str, wanted: str | None = None) -> list[dict[str, Any]]:
    """A scope's stored alerts, newest first; only those with status `wanted` if given."""
    stored = get_services().store.alerts(scope)
    items = [
        {"fingerprint": fingerprint, **alert}
        for fingerprint, alert in stored.items()
        if wanted is None or alert["status"] == wanted
    ]
    items.sort(key=lambda a: a["receivedAt"], reverse=True)
    return items


@bp.get("/alerts")
@require(Role.READ)
def platform_alerts() -> Response:
    """Alerts that name no tenant: PlatformErrorRateHigh, Watchdog, anything else."""
    return jsonify({"items": _alerts(PLATFORM_SCOPE)})


@bp.get("/tenants/<tenant_id>/alerts")
@require(Role.READ)
def tenant_alerts(tenant_id: str) -> Response:
    """Every alert that named this tenant, isolating or not."""
    return jsonify({"items": _alerts(checked_tenant_id(tenant_id))})


@bp.get("/pipeline")
@require(Role.READ)
def pipeline() -> Response:
    """Whether the Prometheus -> Alertmanager -> receiver path is alive (Watchdog)."""
    return jsonify(pipeline_health())


def pipeline_health() -> dict[str, Any]:
    """When the Watchdog last arrived, and whether that is recent enough."""
    services = get_services()
    last = services.store.watchdog_last_seen()
    age = None if last is None else max(0.0, now() - last)
    limit = services.settings.watchdog_max_age_s
    return {
        "watchdog_last_seen_at": last,
        "watchdog_age_s": age,
        "watchdog_max_age_s": limit,
        "healthy": age is not None and age <= limit,
    }
