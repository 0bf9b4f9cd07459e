"""Notifications: pending, sent and dead letters, per channel."""

from __future__ import annotations

from typing import Any

from flask import render_template

from receiver.api.notifications import find_deliveries
from receiver.console.blueprint import bp
from receiver.console.session import signed_in

STATUSES = ("pending", "sent", "failed")
CHANNELS = ("pagerduty", "slack", "email")
SHOWN = 200


@bp.get("/console/notifications")
@signed_in
def notifications_page() -> str:
    query = {"status": None, "incident_id": None, "channel": None, "limit": SHOWN}
    table: dict[str, dict[str, list[dict[str, Any]]]] = {
        channel: {status: [] for status in STATUSES} for channel in CHANNELS
    }
    for delivery in find_deliveries(query):
        by_status = table.setdefault(delivery["channel"], {s: [] for s in STATUSES})
        by_status.setdefault(delivery["status"], []).append(delivery)
    return render_template("notifications.html", table=table, statuses=STATUSES)
