"""Alertmanager's webhook: validate, apply idempotently, answer a summary."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from receiver import metrics
from receiver.api.body import json_body, load
from receiver.auth import Role, require
from receiver.correlate import Signals, update
from receiver.deps import get_services, now
from receiver.ingest import ingest
from receiver.notify.dispatch import drain_quietly
from receiver.schemas import NotificationSchema

bp = Blueprint("webhook", __name__)
_schema = NotificationSchema()


@bp.post("/webhook/alertmanager")
@require(Role.WEBHOOK)
def alertmanager() -> Response:
    notification = load(_schema, json_body())
    services = get_services()
    at = now()
    result = ingest(notification, services.store, services.settings, services.registry, at)
    metrics.observe_ingest(result)
    notices = update(
        services.incidents,
        services.store,
        services.settings,
        services.registry,
        Signals.of(result),
        at,
    )
    if notices:
        drain_quietly(services.hub, at)
    return jsonify(
        {
            "status": "ok",
            "accepted": result.accepted,
            "duplicates": result.duplicates,
            "rejected": result.rejected,
            "truncated_alerts": notification.truncated_alerts,
            "transitions": [event.as_dict() for event in result.transitions],
            "incidents": [notice.as_dict() for notice in notices],
        }
    )
