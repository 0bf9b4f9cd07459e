"""One failure story played through the receiver's API on a clock moved by hand, and
the incidents it leaves, as the API shows them. tests/data/incident-story.json holds
what the receiver answered when incidents were still stored as one document each;
tests/test_incident_parity.py replays the story and compares.

Regenerate (only when the story itself changes, on the code it should match):
    .venv/bin/python -m tests.incident_story > tests/data/incident-story.json
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import fakeredis
import redis
from flask.testing import FlaskClient

from receiver import create_app
from receiver.pipeline import Tick, apply
from tests.conftest import ADMIN_TOKEN, API_TOKEN, T0, WEBHOOK_TOKEN, Clock, isolate_alert
from tests.test_containment import SETTINGS, noisy, platform, stamp, victim

TIERS = ("platinum", "gold", "silver", "bronze", "bronze", "silver", "bronze", "gold")
READ = {"Authorization": f"Bearer {API_TOKEN}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
HOOK = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}
NEW_ONLY = ("tenants_total", "alerts_total", "enforcement")
"""Fields added since the capture."""


def _tenant(n: int) -> str:
    return f"s{n:03d}"


def _post(api: FlaskClient, body: dict[str, Any]) -> None:
    response = api.post("/webhook/alertmanager", json=body, headers=HOOK)
    assert response.status_code == 200, response.get_json()


def _failing(n: int, at: float, status: str = "firing") -> dict[str, Any]:
    return isolate_alert(_tenant(n), status, stamp(at), tier=TIERS[n % len(TIERS)])


def play(client: redis.Redis, queue_url: str | None = None) -> list[dict[str, Any]]:
    """The story; then every incident, newest first, as `GET /api/v1/incidents/<id>`
    shows it (without the fields added since). `queue_url`: the notification queue's
    Redis, where `client` is a cluster."""
    clock = Clock(T0 + 60)
    settings = replace(SETTINGS, webhook_token=WEBHOOK_TOKEN, api_token=API_TOKEN)
    settings = replace(settings, admin_token=ADMIN_TOKEN, max_isolated_percent=100.0)
    settings = replace(settings, notify_redis_url=queue_url)
    app = create_app(
        {"SETTINGS": settings, "REDIS_CLIENT": client, "CLOCK": clock, "SWEEPER": False}
    )
    services = app.extensions["blast_radius"]
    services.store.add_known([_tenant(n) for n in range(60)], T0)
    api = app.test_client()
    for n in range(12):  # one after another, each its own delivery
        _post(api, _failing(n, 5 * n))
        clock.advance(2)
    body = _failing(12, 70)  # then 20 in one delivery
    body["alerts"] = [_failing(n, 70)["alerts"][0] for n in range(12, 32)]
    _post(api, body)
    clock.advance(30)
    apply(services, Tick(), clock())
    for n in range(3):  # a few recover
        _post(api, _failing(n, 5 * n, "resolved"))
    clock.advance(5)
    listed = api.get("/api/v1/incidents", headers=READ).get_json()["items"]
    first = listed[-1]["id"]
    api.post(f"/api/v1/incidents/{first}/acknowledge", json={"by": "asha"}, headers=ADMIN)
    api.post(f"/api/v1/incidents/{first}/notes", json={"text": "looking"}, headers=ADMIN)
    api.post(f"/api/v1/tenants/{_tenant(4)}/breaker", json={"action": "force_close"}, headers=ADMIN)
    clock.advance(400)  # past the correlation window: a shared failure next
    _post(api, platform(at=500))
    _post(api, noisy(_tenant(40), at=505))
    for n in range(41, 50):
        _post(api, victim(_tenant(n), at=506))
    clock.advance(45)
    apply(services, Tick(), clock())
    for n in range(41, 50):
        _post(api, victim(_tenant(n), "resolved", at=506))
    _post(api, platform("resolved", at=500))
    clock.advance(90)
    apply(services, Tick(), clock())
    shown = []
    for item in api.get("/api/v1/incidents", headers=READ).get_json()["items"]:
        incident = api.get(f"/api/v1/incidents/{item['id']}", headers=READ).get_json()
        for name in NEW_ONLY:
            incident.pop(name, None)
        incident["alerts"].sort(key=lambda a: a["fingerprint"])
        shown.append(incident)
    return shown


if __name__ == "__main__":
    print(json.dumps(play(fakeredis.FakeRedis(decode_responses=True)), indent=1, sort_keys=True))
