"""Alertmanager's webhook: validate, apply idempotently, answer a summary."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from receiver.api.auth import Role, require
from receiver.api.body import json_body, load
from receiver.api.deps import get_services, now
from receiver.pipeline import Alerts, apply
from receiver.schemas import NotificationSchema

bp = Blueprint("webhook", __name__)
_schema = NotificationSchema()


@bp.post("/webhook/alertmanager")
@require(Role.WEBHOOK)
def alertmanager() -> Response:
    notification = load(_schema, json_body())
    outcome = apply(get_services(), Alerts(notification), now())
    result = outcome.ingest
    assert result is not None
    notices = outcome.notices
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
