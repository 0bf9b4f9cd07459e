"""Random and hostile input on every endpoint: never a 5xx, never a stack trace, every
error in the envelope, no Redis key outside our naming, no token in a log or reply.

Runs on fakeredis through the Flask test client: thousands of requests, no process
boundary worth crossing.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
import math
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import fakeredis
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from werkzeug.test import TestResponse

from receiver import create_app
from receiver.api.deps import EXTENSION
from receiver.config import Settings
from receiver.tenants import TENANT_ID_PATTERN, is_valid_tenant_id
from tests.conftest import (
    ADMIN,
    ADMIN_TOKEN,
    API_TOKEN,
    READER,
    WEBHOOK,
    WEBHOOK_TOKEN,
    auth,
    isolate_alert,
)

URL = "/webhook/alertmanager"
ENVELOPE = {"status", "code", "message", "errors", "request_id"}
TRACE_MARKERS = ("Traceback (most recent call last)", 'File "/', "site-packages")
KEY = re.compile(r"br:\{(?P<tag>[^{}]*)\}:[^\n]*|rq:[^\n]*")
FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    """fakeredis only: the inputs are the point here, not the server."""
    client = fakeredis.FakeRedis(decode_responses=True)
    yield client
    client.flushall()


HOSTILE_TEXT = [
    "",
    " ",
    "{",
    "}",
    "{acme}",
    "acme}:state",
    "br:{acme}:state",
    "a:b",
    "*",
    "acme*",
    "a\nb",
    "a\r\nb",
    "a\x00b",
    "ünïcödé",
    "租户",
    "🦄",
    "-acme",
    ".acme",
    "..",
    "../admin",
    "%7Bacme%7D",
    "_platform",
    "_global",
    "a" * 65,
    "x" * 5000,
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999999-23:59",
    "2027-13-45T99:61:00Z",
    "2027-01-15T08:00:00",
    "-1",
    "0",
    "1e400",
    "null",
    "true",
    "[]",
    "{}",
]
text = st.sampled_from(HOSTILE_TEXT) | st.text(max_size=40)
scalars = st.none() | st.booleans() | st.integers() | st.floats() | text
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)


def maybe(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a well-formed value, sometimes anything at all."""
    return st.one_of(valid, valid, valid, json_values)


tenant_ids = st.from_regex(TENANT_ID_PATTERN, fullmatch=True) | text
times = (
    st.datetimes().map(lambda d: d.isoformat() + "Z")
    | st.datetimes().map(lambda d: d.isoformat(timespec="milliseconds") + "+05:30")
    | text
)
labels = st.builds(
    lambda base, extra: {**extra, **base},
    st.fixed_dictionaries(
        {
            "alertname": st.sampled_from(["TenantErrorRateHigh", "Watchdog", "Other"]) | text,
            "action": st.sampled_from(["isolate", "page"]),
            "tenant_id": tenant_ids,
        }
    ),
    st.dictionaries(st.sampled_from(["tier", "scope", "severity"]) | text, text, max_size=3),
)
alerts = st.fixed_dictionaries(
    {
        "status": maybe(st.sampled_from(["firing", "resolved"])),
        "labels": maybe(labels),
        "startsAt": maybe(times),
    },
    optional={
        "endsAt": maybe(times),
        "annotations": maybe(st.dictionaries(text, text, max_size=3)),
        "fingerprint": maybe(st.text(min_size=1, max_size=70)),
        "generatorURL": maybe(text),
    },
)
notifications = st.fixed_dictionaries(
    {
        "status": maybe(st.sampled_from(["firing", "resolved"])),
        "alerts": maybe(st.lists(alerts, max_size=5)),
    },
    optional={
        "version": maybe(st.just("4")),
        "receiver": maybe(text),
        "groupKey": maybe(text),
        "groupLabels": maybe(st.dictionaries(text, text, max_size=3)),
        "commonLabels": maybe(st.dictionaries(text, text, max_size=3)),
        "truncatedAlerts": maybe(st.integers(min_value=0)),
        "externalURL": maybe(text),
    },
)


def alert_for(tenant_id: str) -> dict[str, Any]:
    """An isolation alert naming `tenant_id`, whatever it is, with a valid fingerprint."""
    body = isolate_alert(tenant_id)
    body["alerts"][0]["fingerprint"] = "fp-fuzzed"
    return body


def reject_constant(name: str) -> None:
    raise ValueError(f"not JSON: {name}")


def check(response: TestResponse, method: str = "POST") -> dict[str, Any] | None:
    """No 5xx, no trace, strict JSON, and every error in the envelope."""
    body = response.get_data(as_text=True)
    assert response.status_code < 500, body[:500]
    assert not any(marker in body for marker in TRACE_MARKERS), body[:500]
    if method == "HEAD" or response.mimetype != "application/json":
        assert response.status_code < 400 or method == "HEAD", body[:500]
        return None
    data: Any = json.loads(body, parse_constant=reject_constant)
    if response.status_code >= 400:
        assert isinstance(data, dict) and set(data) == ENVELOPE, body[:500]
        assert data["status"] == "error" and data["code"] == response.status_code
        assert data["request_id"] == response.headers["X-Request-ID"]
        assert isinstance(data["message"], str) and data["message"]
    result: dict[str, Any] | None = data if isinstance(data, dict) else None
    return result


def keys_are_ours(client: FlaskClient) -> None:
    """Every key is ours or rq's, and every tag is a valid tenant or an internal scope."""
    store: redis.Redis = client.application.extensions[EXTENSION].store.client
    for key in store.scan_iter(count=1000):
        match = KEY.fullmatch(key)
        assert match is not None, repr(key)
        tag = match.group("tag")
        if tag is not None:
            assert is_valid_tenant_id(tag) or re.fullmatch(r"_[a-z]+", tag), repr(key)


def nan_or_infinite(value: str) -> bool:
    try:
        return not math.isfinite(float(value))
    except ValueError:
        return False


@FUZZ
@given(body=notifications | json_values)
def test_webhook_survives_any_json(client: FlaskClient, body: Any) -> None:
    """Any JSON document: 200 with counts that add up, or a 4xx envelope."""
    response = client.post(
        URL, data=json.dumps(body), headers={**WEBHOOK, "Content-Type": "application/json"}
    )
    summary = check(response)
    assert response.status_code in (200, 400, 422), response.get_data(as_text=True)[:500]
    if response.status_code == 200:
        assert summary is not None
        applied = summary["accepted"] + summary["duplicates"] + len(summary["rejected"])
        assert applied == len(body["alerts"])
    keys_are_ours(client)


@FUZZ
@given(
    raw=st.binary(max_size=400) | st.text(max_size=200).map(str.encode),
    mimetype=st.sampled_from(
        ["application/json", "text/plain", "application/x-www-form-urlencoded", "", "a/b+json"]
    ),
)
def test_webhook_survives_any_bytes(client: FlaskClient, raw: bytes, mimetype: str) -> None:
    """Any bytes under any content type: a 4xx envelope unless they happen to be valid."""
    response = client.post(URL, data=raw, headers={**WEBHOOK, "Content-Type": mimetype})
    check(response)
    if not mimetype.endswith("json"):
        assert response.status_code == 415


def routes(app: Flask) -> list[tuple[str, str]]:
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.startswith("console."):
            continue  # the console's HTML pages are not the JSON API: tests/test_console_*.py
        for method in sorted((rule.methods or set()) - {"OPTIONS"}):
            found.append((rule.rule, method))
    return sorted(found)


QUERY_NAMES = ["page", "per_page", "status", "since", "until", "priority", "scope", "tenant_id"]


@FUZZ
@given(data=st.data())
def test_every_endpoint_survives_anything(app: Flask, client: FlaskClient, data: Any) -> None:
    """Each route, with random path values (an existing incident and tenant among
    them), query, token and body: no 5xx, all errors in the envelope. Non-finite times
    are left to the known-bug test below."""
    if not client.get("/api/v1/incidents", headers=READER).get_json()["total"]:
        client.post(URL, json=isolate_alert("acme"), headers=WEBHOOK)
    known = [i["id"] for i in client.get("/api/v1/incidents", headers=READER).get_json()["items"]]
    rule, method = data.draw(st.sampled_from(routes(app)), label="route")
    path = rule
    for name in re.findall(r"<(?:[^:<>]+:)?([^<>]+)>", rule):
        value = data.draw(st.sampled_from([*known, "acme"]) | tenant_ids, label=name)
        path = re.sub(rf"<(?:[^:<>]+:)?{name}>", quote(value, safe=""), path)
    query = data.draw(
        st.dictionaries(st.sampled_from(QUERY_NAMES) | text, text, max_size=4), label="query"
    )
    assume(not any(nan_or_infinite(v) for v in query.values()))
    headers = data.draw(
        st.sampled_from([READER, ADMIN, WEBHOOK, {}, auth("wrong-token-0000000000")]),
        label="headers",
    )
    kind = data.draw(st.sampled_from(["none", "json", "bytes", "form"]), label="body")
    extra: dict[str, Any] = {}
    if kind == "json":
        payload = data.draw(json_values | st.dictionaries(text, json_values), label="json")
        extra = {"data": json.dumps(payload), "content_type": "application/json"}
    elif kind == "bytes":
        extra = {"data": data.draw(st.binary(max_size=200)), "content_type": "application/json"}
    elif kind == "form":
        extra = {"data": "a=1", "content_type": "application/x-www-form-urlencoded"}
    response = client.open(path, method=method, query_string=query, headers=headers, **extra)
    check(response, method)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/incidents?since=nan",
        "/api/v1/stats?since=nan",
        "/api/v1/stats?until=nan",
        "/api/v1/stats?since=inf",
    ],
)
def test_non_finite_times_are_client_errors(client: FlaskClient, path: str) -> None:
    """A time of nan or inf is the caller's mistake: 400 in the envelope."""
    response = client.get(path, headers=READER)
    check(response, "GET")
    assert response.status_code == 400


HOSTILE_IDS = [t for t in HOSTILE_TEXT if not is_valid_tenant_id(t)]


@pytest.mark.parametrize("tenant_id", HOSTILE_IDS)
def test_hostile_tenant_ids_reach_no_key(client: FlaskClient, tenant_id: str) -> None:
    """Braces, colons, globs, newlines, unicode: refused everywhere, and the tenant
    whose key they imitate is untouched."""
    client.post(URL, json=isolate_alert("acme"), headers=WEBHOOK)
    store: redis.Redis = client.application.extensions[EXTENSION].store.client
    before = {key: store.dump(key) for key in store.scan_iter("br:{acme}:*")}

    reply = check(client.post(URL, json=alert_for(tenant_id), headers=WEBHOOK))
    assert reply is not None and reply["accepted"] == 0
    # Too long for a label value, or not a tenant id: either way the reason names it.
    assert [("tenant_id" in r["reason"]) for r in reply["rejected"]] == [True]
    segment = quote(tenant_id, safe="")
    calls = [
        ("GET", f"/api/v1/tenants/{segment}", None),
        ("PUT", f"/api/v1/tenants/{segment}", {"tier": "gold"}),
        ("POST", f"/api/v1/tenants/{segment}/breaker", {"action": "force_open"}),
        ("GET", f"/api/v1/tenants/{segment}/admission", None),
        ("GET", f"/api/v1/tenants/{segment}/alerts", None),
        ("GET", f"/api/v1/incidents?tenant_id={segment}", None),
    ]
    for method, path, body in calls:
        response = client.open(path, method=method, json=body, headers=ADMIN)
        check(response, method)
        assert response.status_code in (200, 308, 400, 404, 405), (path, response.status_code)
    keys_are_ours(client)
    assert {key: store.dump(key) for key in store.scan_iter("br:{acme}:*")} == before


@FUZZ
@given(tenant_id=tenant_ids)
def test_any_tenant_id_keeps_keys_in_their_slot(client: FlaskClient, tenant_id: str) -> None:
    """Whatever the label says, keys carry only valid tenant ids in their hash tag."""
    reply = check(client.post(URL, json=alert_for(tenant_id), headers=WEBHOOK))
    assert reply is not None
    assert (reply["accepted"] + reply["duplicates"] == 1) is is_valid_tenant_id(tenant_id)
    check(client.get(f"/api/v1/tenants/{quote(tenant_id, safe='')}", headers=READER), "GET")
    keys_are_ours(client)


def big_body(alerts: int, value_bytes: int) -> bytes:
    """A notification of `alerts` alerts over 100 tenants, each with an annotation
    this big."""
    template = isolate_alert("t0")
    alert = template["alerts"][0]
    items = []
    for i in range(alerts):
        labels = {**alert["labels"], "tenant_id": f"t{i % 100}", "alertname": f"Rule{i // 100}"}
        annotations = {"detail": "x" * value_bytes}
        item = {**alert, "labels": labels, "annotations": annotations, "fingerprint": f"fp{i}"}
        items.append(json.dumps(item))
    head = json.dumps({k: v for k, v in template.items() if k != "alerts"})
    return f'{head[:-1]}, "alerts": [{",".join(items)}]}}'.encode()


@pytest.fixture
def default_limit(settings: Settings, redis_client: redis.Redis) -> FlaskClient:
    """The shipped body limit (10 MiB), not the tests' 256 KiB."""
    shipped = dataclasses.replace(settings, max_body_bytes=10 * 1024 * 1024)
    app = create_app({"SETTINGS": shipped, "REDIS_CLIENT": redis_client, "SWEEPER": False})
    return app.test_client()


def test_ten_thousand_alerts_of_10_kib_are_413(default_limit: FlaskClient) -> None:
    """10,000 alerts with 10 KiB labels (about 100 MB) are refused before parsing."""
    body = big_body(10_000, 10 * 1024)
    assert len(body) > 10 * 1024 * 1024
    response = default_limit.post(
        URL, data=body, headers={**WEBHOOK, "Content-Type": "application/json"}
    )
    check(response)
    assert response.status_code == 413


def test_largest_payload_within_the_limit_is_applied(default_limit: FlaskClient) -> None:
    """900 alerts with 10 KiB annotations fit under 10 MiB: all applied, none lost."""
    body = big_body(900, 10 * 1024)
    assert 9 * 1024 * 1024 < len(body) < 10 * 1024 * 1024
    response = default_limit.post(
        URL, data=body, headers={**WEBHOOK, "Content-Type": "application/json"}
    )
    reply = check(response)
    assert response.status_code == 200 and reply is not None
    assert (reply["accepted"], reply["duplicates"], reply["rejected"]) == (900, 0, [])


def test_nesting_deeper_than_the_parser_is_400(client: FlaskClient) -> None:
    """Nesting that would exhaust the parser, in a label, answers 400."""
    body = '{"status":"firing","alerts":[{"labels":' + "[" * 50_000 + "]" * 50_000 + "}]}"
    response = client.post(URL, data=body, headers={**WEBHOOK, "Content-Type": "application/json"})
    check(response)
    assert response.status_code == 400


def test_tokens_are_compared_in_constant_time(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every token check goes through hmac.compare_digest, right token or wrong."""
    seen: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    client.post(URL, json=isolate_alert("acme"), headers=WEBHOOK)
    client.post(URL, json=isolate_alert("acme"), headers=auth("wrong-token-0000000000"))
    client.get("/api/v1/tenants/acme", headers=READER)
    assert (WEBHOOK_TOKEN.encode(), WEBHOOK_TOKEN.encode()) in seen
    assert (b"wrong-token-0000000000", WEBHOOK_TOKEN.encode()) in seen
    assert (API_TOKEN.encode(), API_TOKEN.encode()) in seen


@FUZZ
@given(wrong=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=16))
def test_tokens_never_reach_logs_or_replies(
    client: FlaskClient, caplog: pytest.LogCaptureFixture, wrong: str
) -> None:
    """Wrong tokens, right tokens used for the wrong role, and right ones on requests
    that fail: none is ever written to a log record or a reply."""
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    exchanges = [
        client.post(URL, json=isolate_alert("acme"), headers=auth(wrong)),
        client.post(URL, json=isolate_alert("acme"), headers=READER),
        client.post(URL, json={"alerts": "x"}, headers=WEBHOOK),
        client.post(URL, json=isolate_alert("x}:*"), headers=WEBHOOK),
        client.get("/api/v1/tenants/acme", headers=WEBHOOK),
        client.get("/api/v1/tenants/acme", headers=auth(wrong)),
        client.post("/api/v1/tenants/acme/breaker", json={"action": "x"}, headers=ADMIN),
        client.post("/api/v1/tenants/acme/breaker", json={"action": "reset"}, headers=READER),
        client.get("/api/v1/incidents/nope", headers=READER),
    ]
    exchanges.append(client.post(URL, json=isolate_alert("acme"), headers=WEBHOOK))
    texts = [caplog.text, *(r.getMessage() for r in caplog.records)]
    texts += [str(vars(r)) for r in caplog.records]
    for response in exchanges:
        texts.append(response.get_data(as_text=True))
        texts.append(str(dict(response.headers)))
    for secret in (wrong, WEBHOOK_TOKEN, API_TOKEN, ADMIN_TOKEN):
        assert not any(secret in t for t in texts), secret
