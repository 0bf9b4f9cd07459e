"""POST /webhook/alertmanager over HTTP: auth, validation, errors, idempotency."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from receiver import create_app
from receiver.config import Settings
from receiver.store import connect
from tests.conftest import ADMIN, API_TOKEN, READER, WEBHOOK, WEBHOOK_TOKEN, isolate_alert, payload
from tests.servers import free_port

URL = "/webhook/alertmanager"


def post(client: FlaskClient, body: Any, headers: dict[str, str] | None = None) -> Any:
    return client.post(URL, json=body, headers=WEBHOOK if headers is None else headers)


def assert_envelope(response: Any, code: int) -> dict[str, Any]:
    assert response.status_code == code
    body: dict[str, Any] = response.get_json()
    assert body["status"] == "error" and body["code"] == code
    assert set(body) == {"status", "code", "message", "errors", "request_id"}
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


@pytest.mark.parametrize(
    "name",
    [
        "single-tenant-firing.json",
        "single-tenant-resolved.json",
        "watchdog-firing.json",
        "grouped-truncated-firing.json",
        "grouped-truncated-resolved.json",
    ],
)
def test_captured_payloads_are_accepted(client: FlaskClient, name: str) -> None:
    """Every payload captured from a real Alertmanager is accepted in full."""
    body = payload(name)
    response = post(client, body)
    assert response.status_code == 200
    assert response.get_json()["accepted"] == len(body["alerts"])


def test_firing_isolate_alert_opens_and_summary_says_so(client: FlaskClient) -> None:
    """The reply counts the alert and names the transition it made."""
    summary = post(client, isolate_alert("acme")).get_json()
    assert summary["accepted"] == 1 and summary["duplicates"] == 0
    assert [(t["tenant_id"], t["from"], t["to"]) for t in summary["transitions"]] == [
        ("acme", "closed", "open")
    ]
    assert sorted(summary["incidents"], key=lambda n: n["kind"]) == [
        {"kind": kind, "incident_id": summary["incidents"][0]["incident_id"], "tenant_id": tenant}
        for kind, tenant in (
            ("opened", None),
            ("tenant_isolated", "acme"),
            ("tenant_joined", "acme"),
        )
    ]
    tenant = client.get("/api/v1/tenants/acme", headers=READER).get_json()
    assert tenant["breaker"]["state"] == "open"


def test_same_delivery_twice_is_a_duplicate(client: FlaskClient) -> None:
    """Alertmanager's re-send changes nothing and says it was a duplicate."""
    post(client, isolate_alert("acme"))
    summary = post(client, isolate_alert("acme")).get_json()
    assert (summary["accepted"], summary["duplicates"], summary["transitions"]) == (0, 1, [])
    tenant = client.get("/api/v1/tenants/acme", headers=READER).get_json()
    assert len(tenant["breaker"]["transitions"]) == 1


def test_unknown_fields_are_ignored(client: FlaskClient) -> None:
    """A newer Alertmanager's extra fields must not get the payload rejected."""
    body = isolate_alert("acme")
    body["newTopLevel"] = {"x": 1}
    body["alerts"][0]["silencedBy"] = ["abc"]
    assert post(client, body).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token-wrong-token"},
        {"Authorization": f"Basic {WEBHOOK_TOKEN}"},
        {"Authorization": f"Bearer {API_TOKEN}"},
        {"Authorization": "Bearer"},
    ],
)
def test_missing_or_wrong_token_is_401(client: FlaskClient, headers: dict[str, str]) -> None:
    """Only the webhook token posts alerts; the error says nothing about tokens it knows."""
    response = post(client, isolate_alert("acme"), headers)
    body = assert_envelope(response, 401)
    assert WEBHOOK_TOKEN not in response.get_data(as_text=True)
    assert body["message"] == "missing or invalid bearer token"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_malformed_json_is_400(client: FlaskClient) -> None:
    """Broken JSON answers 400 in the envelope."""
    response = client.post(URL, data="{", headers={**WEBHOOK, "Content-Type": "application/json"})
    assert "malformed JSON" in assert_envelope(response, 400)["message"]


def test_a_body_only_the_standard_library_reads_is_read_as_before(client: FlaskClient) -> None:
    """Bodies are parsed by orjson; what it refuses and Python's json takes (a UTF-16
    body, a number past 64 bits) is still read, and still says why when it fails."""
    body = isolate_alert("acme")
    body["commonAnnotations"] = {"window": 2**70}
    utf16 = client.post(
        URL,
        data=json.dumps(body).encode("utf-16"),
        headers={**WEBHOOK, "Content-Type": "application/json"},
    )
    assert utf16.status_code == 200, utf16.get_data(as_text=True)
    assert utf16.get_json()["accepted"] == 1
    deep = client.post(
        URL, data="[" * 100_000, headers={**WEBHOOK, "Content-Type": "application/json"}
    )
    assert assert_envelope(deep, 400)["message"] == "request body is nested too deeply"


def test_non_utf8_body_is_400(client: FlaskClient) -> None:
    """Bytes that are not UTF-8 are the client's fault."""
    response = client.post(
        URL, data=b'{"a": "\xff\xfe"}', headers={**WEBHOOK, "Content-Type": "application/json"}
    )
    assert_envelope(response, 400)


def test_deeply_nested_json_is_400(client: FlaskClient) -> None:
    """Nesting that would exhaust the parser is refused, not a 500."""
    body = "[" * 100_000 + "]" * 100_000
    response = client.post(URL, data=body, headers={**WEBHOOK, "Content-Type": "application/json"})
    assert_envelope(response, 400)


def test_wrong_content_type_is_415(client: FlaskClient) -> None:
    """Alertmanager always sends JSON; anything else is refused."""
    response = client.post(URL, data="x=1", headers={**WEBHOOK, "Content-Type": "text/plain"})
    assert_envelope(response, 415)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.pop("alerts"), "alerts"),
        (lambda b: b.update(alerts={"not": "a list"}), "alerts"),
        (lambda b: b.update(status="maybe"), "status"),
        (lambda b: b.update(truncatedAlerts=-1), "truncatedAlerts"),
    ],
)
def test_schema_errors_are_422_with_field_errors(
    client: FlaskClient, mutate: Any, field: str
) -> None:
    """A payload that is not a notification: each invalid field named, nothing applied."""
    body = isolate_alert("acme")
    mutate(body)
    errors = assert_envelope(post(client, body), 422)["errors"]
    assert field in errors
    tenant = client.get("/api/v1/tenants/acme", headers=READER).get_json()
    assert tenant["breaker"]["state"] == "closed"


BAD_ALERTS = [
    pytest.param({"status": "unknown"}, "status", id="status"),
    pytest.param({"startsAt": "yesterday"}, "startsAt", id="startsAt"),
    pytest.param({"startsAt": "2027-01-15T08:00:00"}, "time zone", id="no-time-zone"),
    pytest.param({"labels": {"tenant_id": 7}}, "tenant_id", id="label-not-a-string"),
    pytest.param({"labels": {"x" * 1025: "1"}}, "Name must be", id="label-name-too-long"),
    pytest.param({"labels": {"tenant_id": "b", "v": "x" * 5000}}, "4096 bytes", id="label-value"),
    pytest.param({"labels": {f"l{i}": "1" for i in range(65)}}, "At most 64", id="labels"),
    pytest.param({"labels": {"tenant_id": "b:{x}"}}, "invalid tenant_id", id="tenant-id"),
    pytest.param({"fingerprint": ""}, "fingerprint", id="fingerprint"),
    pytest.param({"annotations": "text"}, "annotations", id="annotations"),
    pytest.param({"labels": None}, "labels", id="labels-null"),
]


@pytest.mark.parametrize(("change", "reason"), BAD_ALERTS)
def test_one_bad_alert_is_rejected_alone(
    client: FlaskClient, change: dict[str, Any], reason: str
) -> None:
    """An invalid alert beside a valid isolation alert: rejected with its reason, and
    the valid one is applied (200, so Alertmanager does not hold the group back)."""
    body = isolate_alert("acme")
    bad = {**copy.deepcopy(body["alerts"][0]), "fingerprint": "bad-one", **change}
    body["alerts"].append(bad)
    response = post(client, body)
    assert response.status_code == 200
    reply = response.get_json()
    assert reply["accepted"] == 1
    assert [r["fingerprint"] for r in reply["rejected"]] == [change.get("fingerprint", "bad-one")]
    assert reason in reply["rejected"][0]["reason"]
    tenant = client.get("/api/v1/tenants/acme", headers=READER).get_json()
    assert tenant["breaker"]["state"] == "open"


def test_an_alert_that_is_not_an_object_is_rejected_alone(client: FlaskClient) -> None:
    """A string among the alerts is one rejection, not a 422 for the whole payload."""
    body = isolate_alert("acme")
    body["alerts"].append("not an alert")
    reply = post(client, body).get_json()
    assert (reply["accepted"], reply["rejected"]) == (
        1,
        [{"fingerprint": "", "reason": "not an object"}],
    )


def test_an_annotation_too_long_is_cut_and_marked(client: FlaskClient) -> None:
    """A 100 kB annotation is stored cut at 16 KiB, marked; the alert is applied."""
    body = isolate_alert("acme")
    body["alerts"][0]["annotations"] = {"description": "é" + "x" * 100_000}
    assert post(client, body).get_json()["accepted"] == 1
    stored = client.get("/api/v1/tenants/acme/alerts", headers=READER).get_json()
    description = stored["items"][0]["annotations"]["description"]
    assert description.endswith("…[truncated]")
    assert len(description.encode()) <= 16384


def test_json_that_is_not_an_object_is_422(client: FlaskClient) -> None:
    """A JSON list is valid JSON but not a notification."""
    assert_envelope(post(client, [1, 2]), 422)


def test_body_over_the_limit_is_413(client: FlaskClient, settings: Settings) -> None:
    """The body limit (here 256 KiB) answers 413 before parsing."""
    body = isolate_alert("acme")
    body["alerts"][0]["annotations"]["big"] = "x" * settings.max_body_bytes
    assert_envelope(post(client, body), 413)


def test_request_id_is_echoed(client: FlaskClient) -> None:
    """A caller's X-Request-ID comes back on success and in error envelopes."""
    ok = client.post(URL, json=isolate_alert("a"), headers={**WEBHOOK, "X-Request-ID": "abc-123"})
    assert ok.headers["X-Request-ID"] == "abc-123"
    bad = client.post(URL, json={}, headers={**WEBHOOK, "X-Request-ID": "abc-124"})
    assert bad.get_json()["request_id"] == "abc-124"


def test_redis_down_is_503_so_alertmanager_retries(settings: Settings) -> None:
    """Our own fault is 5xx: the delivery will be retried, not lost."""
    dead, _ = connect(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.5)
    app = create_app({"SETTINGS": settings, "REDIS_CLIENT": dead, "SWEEPER": False})
    client = app.test_client()
    response = post(client, isolate_alert("acme"))
    body = assert_envelope(response, 503)
    assert "Connection" not in body["message"] and response.headers["Retry-After"]
    assert_envelope(client.get("/api/v1/tenants/acme", headers=READER), 503)
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").status_code == 200


def test_unexpected_error_is_500_without_details(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug answers a bare 500 (retried by Alertmanager), never a stack trace."""

    def explode(*_: Any, **__: Any) -> None:
        raise KeyError("secret internal detail")

    monkeypatch.setattr("receiver.pipeline.ingest", explode)
    response = post(client, isolate_alert("acme"))
    body = assert_envelope(response, 500)
    assert body["message"] == "internal error"
    assert "secret" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)


def test_unknown_route_and_method_use_the_envelope(client: FlaskClient) -> None:
    """404 and 405 are envelopes too."""
    assert_envelope(client.get("/nope", headers=ADMIN), 404)
    assert_envelope(client.get(URL, headers=WEBHOOK), 405)


def test_invalid_tenant_label_is_reported_not_fatal(client: FlaskClient) -> None:
    """One alert with a hostile tenant_id is rejected; the rest of the payload applies."""
    body = isolate_alert("acme")
    evil = json.loads(json.dumps(body["alerts"][0]))
    evil["labels"]["tenant_id"] = "x}:*\n"
    evil["fingerprint"] = "evil"
    body["alerts"].append(evil)
    summary = post(client, body).get_json()
    assert summary["accepted"] == 1
    assert summary["rejected"] == [{"fingerprint": "evil", "reason": "invalid tenant_id label"}]
