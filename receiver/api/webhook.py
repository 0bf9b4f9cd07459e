"""Alertmanager's webhook: validate, apply idempotently, answer a summary."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from flask import Blueprint, Response, jsonify

from receiver.api.auth import Role, require
from receiver.api.body import json_body, load
from receiver.api.deps import get_services, now
from receiver.config import Settings
from receiver.gc_pause import gc_paused
from receiver.pipeline import Alerts, apply
from receiver.schemas import AlertLimits, NotificationSchema

bp = Blueprint("webhook", __name__)


@lru_cache(maxsize=4)
def schema_for(limits: AlertLimits) -> NotificationSchema:
    return NotificationSchema(limits=limits)


def limits_of(settings: Settings) -> AlertLimits:
    return AlertLimits(
        max_label_bytes=settings.max_label_bytes,
        max_annotation_bytes=settings.max_annotation_bytes,
    )


@bp.post("/webhook/alertmanager")
@require(Role.WEBHOOK)
def alertmanager() -> Response:
    with gc_paused():
        return _answer()


def _answer() -> Response:
    """The reply, encoded: a function of its own so that all the delivery built,
    the reply's tens of thousands of objects too, is freed (by reference counting)
    before the collector resumes, and its first pass has nothing of it to walk."""
    return jsonify(deliver())


def deliver() -> dict[str, Any]:
    """Validate and apply the delivery; the reply."""
    services = get_services()
    schema, body = schema_for(limits_of(services.settings)), json_body()
    notification = schema.checked(body) or load(schema, body)
    outcome = apply(services, Alerts(notification), now())
    result = outcome.ingest
    assert result is not None
    return {
        "status": "ok",
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "rejected": result.rejected,
        "truncated_alerts": notification.truncated_alerts,
        "transitions": [event.as_dict() for event in result.transitions],
        "incidents": outcome.notices,  # dataclasses: encoded as `Notice.as_dict` has them
    }
