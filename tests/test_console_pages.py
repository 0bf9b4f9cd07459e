from __future__ import annotations

import re

import redis
from flask.testing import FlaskClient

from receiver import create_app
from receiver.config import Settings
from receiver.stack import free_port
from tests.conftest import ADMIN, ADMIN_TOKEN, API_TOKEN, WEBHOOK, Clock, isolate_alert
from tests.console_helpers import csrf_of, sign_in

SCRIPT = "<script>alert('owned')</script>"


def _isolate(client: FlaskClient, tenant_id: str, summary: str = "errors") -> None:
    body = isolate_alert(tenant_id)
    body["alerts"][0]["annotations"] = {"summary": summary, "description": f"<b>{tenant_id}</b>"}
    assert client.post("/webhook/alertmanager", json=body, headers=WEBHOOK).status_code == 200


def _incident_id(client: FlaskClient) -> str:
    found = re.search(r'href="/console/incidents/([^"]+)"', client.get("/console/incidents").text)
    assert found
    return found.group(1)


def test_the_fleet_shows_an_isolated_tenant_by_colour_icon_and_label(client: FlaskClient) -> None:
    """The tile's class, icon and title say open; the counts and the cap are there."""
    _isolate(client, "acme")
    sign_in(client, API_TOKEN)
    page = client.get("/").text
    assert 'class="tile s-open" href="/console/tenants/acme"' in page
    assert 'title="acme: open: isolated"><i>✕</i>acme</a>' in page
    assert '<strong data-sum="isolated">1</strong>' in page


def test_the_fleet_json_is_every_tile_in_one_document(client: FlaskClient) -> None:
    """One request answers every tenant's tier and state, and the summary."""
    _isolate(client, "acme")
    client.put("/api/v1/tenants/beta", json={"tier": "gold"}, headers=ADMIN)
    sign_in(client, API_TOKEN)
    data = client.get("/console/fleet.json").get_json()
    assert sorted(data["tiles"]) == [["acme", "bronze", "open"], ["beta", "gold", "closed"]]
    assert (data["known"], data["isolated"], data["cap"]) == (2, 1, 1)
    assert data["counts"] == {"open": 1, "closed": 1}


def test_a_trip_the_guard_held_back_has_its_own_tile(client: FlaskClient) -> None:
    """With the cap (2 of 10 known) full, a third failing tenant's tile says held back."""
    client.application.extensions["blast_radius"].store.add_known([f"t{i}" for i in range(10)], 0)
    for tenant_id in ("t0", "t1", "t2"):
        _isolate(client, tenant_id)
    sign_in(client, API_TOKEN)
    data = client.get("/console/fleet.json").get_json()
    assert data["counts"] == {"open": 2, "held": 1, "closed": 7}
    assert ["t2", "bronze", "held"] in data["tiles"]
    assert 'title="t2: held back by the guard"' in client.get("/").text


def test_annotations_render_as_text(client: FlaskClient) -> None:
    """HTML in an alert's annotations is escaped on the tenant page, never run."""
    _isolate(client, "acme", SCRIPT)
    sign_in(client, API_TOKEN)
    page = client.get("/console/tenants/acme").text
    assert SCRIPT not in page and "<b>acme</b>" not in page
    assert "&lt;script&gt;alert(&#39;owned&#39;)&lt;/script&gt;" in page
    assert (
        "script-src 'self'"
        in client.get("/console/tenants/acme").headers["Content-Security-Policy"]
    )


def test_force_close_with_a_reason_lands_on_the_timeline(client: FlaskClient) -> None:
    """The console's action goes through the pipeline: the JSON API sees the transition."""
    _isolate(client, "acme")
    sign_in(client, ADMIN_TOKEN, name="ana")
    page = client.get("/console/tenants/acme")
    done = client.post(
        "/console/tenants/acme/breaker",
        data={"csrf_token": csrf_of(page), "action": "force_close", "reason": "false alarm"},
    )
    assert done.status_code == 302
    last = client.get("/api/v1/tenants/acme", headers=ADMIN).get_json()["breaker"]
    assert last["state"] == "closed"
    assert last["transitions"][0]["reason"] == "false alarm (by ana, console)"
    assert "false alarm (by ana, console)" in client.get("/console/tenants/acme").text


def test_an_action_without_a_reason_is_refused(client: FlaskClient) -> None:
    """A breaker action needs a reason; without one the breaker is left alone."""
    _isolate(client, "acme")
    sign_in(client, ADMIN_TOKEN)
    page = client.get("/console/tenants/acme")
    data = {"csrf_token": csrf_of(page), "action": "force_close", "reason": " "}
    assert client.post("/console/tenants/acme/breaker", data=data).status_code == 422
    breaker = client.get("/api/v1/tenants/acme", headers=ADMIN).get_json()["breaker"]
    assert breaker["state"] == "open"


def test_acknowledge_note_and_resolve_an_incident(client: FlaskClient) -> None:
    """Each action reaches the incident as the JSON API shows it, with who did it."""
    _isolate(client, "acme")
    sign_in(client, ADMIN_TOKEN, name="ana")
    incident_id = _incident_id(client)
    url = f"/console/incidents/{incident_id}"
    token = csrf_of(client.get(url))
    client.post(f"{url}/acknowledge", data={"csrf_token": token})
    client.post(f"{url}/notes", data={"csrf_token": token, "text": SCRIPT})
    client.post(f"{url}/false-positive", data={"csrf_token": token, "reason": "test rig"})
    client.post(f"{url}/resolve", data={"csrf_token": token, "reason": "fixed"})
    incident = client.get(f"/api/v1/{url.removeprefix('/console/')}", headers=ADMIN).get_json()
    assert incident["status"] == "resolved" and incident["false_positive"] is True
    messages = " | ".join(event["message"] for event in incident["timeline"])
    assert "acknowledged by ana, console" in messages
    assert "by ana, console: fixed" in messages
    note = incident["notes"][0]
    assert (note["author"], note["text"]) == ("ana, console", SCRIPT)
    page = client.get(url).text
    assert SCRIPT not in page and "&lt;script&gt;" in page


def test_the_postmortem_editor_saves_what_the_api_takes(client: FlaskClient) -> None:
    """Root cause, whys, action items and lessons reach the postmortem, escaped when shown."""
    _isolate(client, "acme")
    sign_in(client, ADMIN_TOKEN)
    url = f"/console/incidents/{_incident_id(client)}"
    form = {
        "csrf_token": csrf_of(client.get(url)),
        "root_cause": "pool exhausted <img src=x onerror=alert(1)>",
        "why-0": "queries piled up",
        "item-0-title": "cap per-tenant pool share",
        "item-0-owner": "platform",
        "item-0-due": "2027-02-01",
        "item-1-title": "",
        "lessons": "alert on pool saturation\n",
    }
    assert client.post(f"{url}/postmortem", data=form).status_code == 302
    markdown = client.get(f"/api/v1/{url.removeprefix('/console/')}/postmortem", headers=ADMIN).text
    assert "| cap per-tenant pool share | platform | 2027-02-01 |" in markdown
    page = client.get(url).text
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<td>cap per-tenant pool share</td>" in page


def test_a_missing_incident_is_a_page_not_an_envelope(client: FlaskClient) -> None:
    """An unknown incident id gets the console's 404 page."""
    sign_in(client, API_TOKEN)
    page = client.get("/console/incidents/INC-nope")
    assert page.status_code == 404 and page.mimetype == "text/html"


def test_incidents_filter_by_status_and_priority(client: FlaskClient) -> None:
    """The list keeps to the filter; an empty choice means any."""
    _isolate(client, "acme")
    sign_in(client, API_TOKEN)
    assert "INC-" in client.get("/console/incidents?status=open&priority=").text
    assert "INC-" not in client.get("/console/incidents?status=resolved").text
    assert "INC-" not in client.get("/console/incidents?priority=P0").text


def test_the_notifications_page_counts_per_channel(client: FlaskClient) -> None:
    """Every channel has a row of pending, sent and dead letters."""
    sign_in(client, API_TOKEN)
    page = client.get("/console/notifications")
    assert page.status_code == 200
    assert all(channel in page.text for channel in ("pagerduty", "slack", "email"))
    assert "dead letters" in page.text


def test_redis_down_is_a_banner_not_a_trace(settings: Settings, clock: Clock) -> None:
    """With the store unreachable the pages answer 503 with a banner, the poll a JSON note."""
    down = redis.Redis(port=free_port(), socket_timeout=0.2, socket_connect_timeout=0.2)
    app = create_app({"SETTINGS": settings, "REDIS_CLIENT": down, "CLOCK": clock, "SWEEPER": False})
    client = app.test_client()
    assert sign_in(client, API_TOKEN).status_code == 302
    page = client.get("/")
    assert page.status_code == 503 and 'class="banner"' in page.text
    assert "Traceback" not in page.text and "unavailable" in page.text
    poll = client.get("/console/fleet.json")
    assert poll.status_code == 503 and "unavailable" in poll.get_json()["message"]
