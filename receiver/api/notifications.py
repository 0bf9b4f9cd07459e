"""Notification deliveries: what was sent, what waits to retry, what failed for good."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flask import Blueprint, Response, jsonify
from marshmallow import Schema, fields, validate

from receiver.api.auth import Role, require
from receiver.api.body import load_query
from receiver.api.deps import get_services, now

bp = Blueprint("notifications", __name__, url_prefix="/api/v1")
SCANNED = 5000


class NotificationQuery(Schema):
    status = fields.String(
        load_default=None, validate=validate.OneOf(["pending", "sent", "failed"])
    )
    incident_id = fields.String(load_default=None, validate=validate.Length(min=1, max=64))
    channel = fields.String(
        load_default=None, validate=validate.OneOf(["pagerduty", "slack", "email"])
    )
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


@bp.get("/notifications")
@require(Role.READ)
def list_notifications() -> Response:
    """Newest first; payloads included (they hold no secrets but the PagerDuty
    routing key, which is masked)."""
    return jsonify({"items": find_deliveries(load_query(NotificationQuery()))})


def find_deliveries(query: dict[str, Any]) -> list[dict[str, Any]]:
    """Deliveries matching a loaded `NotificationQuery`, newest first, keys masked."""
    items = []
    for delivery in get_services().hub.deliveries.recent(SCANNED, now()):
        if query["status"] and delivery.status != query["status"]:
            continue
        if query["incident_id"] and delivery.incident_id != query["incident_id"]:
            continue
        if query["channel"] and delivery.channel != query["channel"]:
            continue
        data = asdict(delivery)
        if "routing_key" in data["payload"]:
            data["payload"] = {**data["payload"], "routing_key": "***"}
        items.append(data)
        if len(items) >= query["limit"]:
            break
    return items
