"""`GET /metrics`, and the webhook's request counter and timer."""

from __future__ import annotations

import time

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from receiver.api.auth import Role, require
from receiver.api.deps import EXTENSION
from receiver.metrics import WEBHOOK_DURATION, WEBHOOK_REQUESTS, build_registry

REGISTRY_EXTENSION = "blast_radius_metrics"
WEBHOOK_ENDPOINT = "webhook.alertmanager"

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
@require(Role.METRICS)
def scrape() -> Response:
    registry: CollectorRegistry = current_app.extensions[REGISTRY_EXTENSION]
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    return Response(encode(registry), headers={"Content-Type": content_type})


@bp.before_app_request
def _start_clock() -> None:
    if request.endpoint == WEBHOOK_ENDPOINT:
        g.webhook_started = time.perf_counter()


@bp.after_app_request
def _count_webhook(response: Response) -> Response:
    started: float | None = g.pop("webhook_started", None)
    if started is not None:
        WEBHOOK_DURATION.observe(time.perf_counter() - started)
        WEBHOOK_REQUESTS.labels(f"{response.status_code // 100}xx").inc()
    return response


def init_app(app: Flask) -> None:
    """Serve `GET /metrics` and time the webhook. Call after the services are in
    `app.extensions`; a second call does nothing."""
    if REGISTRY_EXTENSION in app.extensions:
        return
    app.extensions[REGISTRY_EXTENSION] = build_registry(app.extensions[EXTENSION])
    app.register_blueprint(bp)
