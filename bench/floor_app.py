"""The floor for `bench.throughput` and `bench.topologies`: the same routes under the
same gunicorn, doing nothing but what no receiver can skip (parse the JSON body,
answer JSON)."""

from __future__ import annotations

import json

from flask import Flask, Response, jsonify, request


def create_app() -> Flask:
    app = Flask(__name__)

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok"})

    @app.post("/webhook/alertmanager")
    def webhook() -> Response:
        body = json.loads(request.get_data(cache=False))
        return jsonify({"status": "ok", "accepted": len(body["alerts"])})

    @app.get("/gate")
    def gate() -> Response:
        return jsonify({"allow": True, "state": "closed"})

    @app.get("/api/v1/tenants/<tenant_id>/admission")
    def admission(tenant_id: str) -> Response:
        return jsonify({"tenant_id": tenant_id, "allow": True, "state": "closed"})

    return app
