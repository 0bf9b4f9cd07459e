"""The floor for `bench.throughput` and `bench.topologies`: the same routes under the
same gunicorn, doing nothing but what no receiver can skip (parse the JSON body,
answer JSON). With `round_trip`, a webhook also asks Redis (`REDIS_URL`) in one
round trip whether its alerts were seen: the least a receiver that must not apply a
delivery twice, with its state shared by every worker, can do."""

from __future__ import annotations

import json
import os

import redis
from flask import Flask, Response, jsonify, request


def create_app(round_trip: bool = False) -> Flask:
    app = Flask(__name__)
    shared = redis.Redis.from_url(os.environ["REDIS_URL"]) if round_trip else None

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok"})

    @app.post("/webhook/alertmanager")
    def webhook() -> Response:
        body = json.loads(request.get_data(cache=False))
        if shared is not None:
            shared.zmscore("floor:seen", [alert["fingerprint"] for alert in body["alerts"]])
        return jsonify({"status": "ok", "accepted": len(body["alerts"])})

    @app.get("/gate")
    def gate() -> Response:
        return jsonify({"allow": True, "state": "closed"})

    @app.get("/api/v1/tenants/<tenant_id>/admission")
    def admission(tenant_id: str) -> Response:
        return jsonify({"tenant_id": tenant_id, "allow": True, "state": "closed"})

    return app
