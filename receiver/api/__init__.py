"""HTTP endpoints, one blueprint per resource."""

from __future__ import annotations

from flask import Flask

from receiver.api import (
    admission,
    alerts,
    gate,
    health,
    incidents,
    notifications,
    openapi,
    tenants,
    webhook,
)


def register(app: Flask) -> None:
    app.register_blueprint(health.bp)
    app.register_blueprint(webhook.bp)
    app.register_blueprint(tenants.bp)
    app.register_blueprint(alerts.bp)
    app.register_blueprint(incidents.bp)
    app.register_blueprint(notifications.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(admission.bp)
    app.register_blueprint(gate.bp)
