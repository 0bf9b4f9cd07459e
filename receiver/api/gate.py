"""`/gate`: forward-auth for NGINX `auth_request`, Traefik ForwardAuth and Envoy
`ext_authz`. The answer is the status code: 200 serves the request, the deny status
(a 4xx, never a 5xx) refuses it with `Retry-After`. docs/gateway.md has each
gateway's reading of it.

One `HGET` of the deny-list per request. A half-open answer, and a shadow-mode
would-deny, says `X-Accel-Expires: 0` so nginx's auth cache keeps neither: each such
request is a probe drawn here, or a would-deny counted here."""

from __future__ import annotations

import json
import logging
import random

import redis
from flask import Blueprint, Response, request

from receiver.api.auth import Role, require
from receiver.api.deps import get_services, now
from receiver.breaker import State, admit, tick
from receiver.config import Enforcement
from receiver.gate import tenant_of
from receiver.metrics import GATE_DECISIONS, WOULD_DENY

log = logging.getLogger(__name__)
bp = Blueprint("gate", __name__)
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
DENY_STATUS_HEADER = "X-Blast-Radius-Deny-Status"
"""Lets one gateway ask for its own deny status (nginx: 403) whatever `GATE_DENY_STATUS` is."""
URI_HEADERS = ("X-Original-URI", "X-Forwarded-Uri")
TOKEN_HEADER = "X-Blast-Radius-Token"
"""The API token for gateways that cannot set Authorization on the check alone
(Traefik: a headers middleware sets it, ForwardAuth copies it, another removes it)."""
STORE_RETRY_AFTER_S = 5


def _answer(status: int, body: dict[str, object], headers: dict[str, str]) -> Response:
    text = "" if request.method == "HEAD" else json.dumps(body, separators=(",", ":"))
    response = Response(text, status=status, mimetype="application/json")
    response.headers.update(headers)
    return response


def _deny_status(default: int) -> int:
    asked = request.headers.get(DENY_STATUS_HEADER, "").strip()
    if asked.isdigit() and 400 <= int(asked) <= 499:
        return int(asked)
    return default


@bp.route(
    "/gate",
    methods=METHODS,
    defaults={"rest": ""},
    strict_slashes=False,
    provide_automatic_options=False,
)
@bp.route("/gate/<path:rest>", methods=METHODS, provide_automatic_options=False)
@require(Role.READ, token_header=TOKEN_HEADER)
def gate(rest: str) -> Response:
    services = get_services()
    settings = services.settings
    deny_status = _deny_status(settings.gate.deny_status)
    uris = [request.headers.get(name, "") for name in URI_HEADERS] + [f"/{rest}"]
    tenant = tenant_of(
        request.headers.get(settings.gate.tenant_header), uris, settings.gate.tenant_pattern
    )
    if tenant is None:
        GATE_DECISIONS.labels("no_tenant").inc()
        if settings.gate.no_tenant_allow:
            return _answer(200, {"allow": True, "state": "no_tenant"}, {})
        body = {"allow": False, "state": "no_tenant", "message": "no tenant in the request"}
        return _answer(deny_status, body, {"X-Blast-Radius-State": "no_tenant"})
    at = now()
    try:
        stored = services.store.admission.breaker(tenant)
    except redis.RedisError as exc:
        log.warning("gate: store unavailable: %s", exc.__class__.__name__)
        if settings.gate.fail_open:
            GATE_DECISIONS.labels("fail_open").inc()
            headers = {"X-Blast-Radius-Fail-Open": "store unavailable"}
            return _answer(200, {"allow": True, "state": "unknown"}, headers)
        GATE_DECISIONS.labels("fail_closed").inc()
        body = {"allow": False, "state": "unknown", "message": "store unavailable"}
        headers = {"Retry-After": str(STORE_RETRY_AFTER_S), "X-Blast-Radius-State": "unknown"}
        return _answer(deny_status, body, headers)
    breaker, _ = tick(stored, at, settings.breaker)
    decision = admit(breaker, at, settings.breaker, random.random())
    headers = {"X-Blast-Radius-State": decision.state.value}
    if decision.state is State.HALF_OPEN:
        headers["X-Accel-Expires"] = "0"
    if decision.allow:
        GATE_DECISIONS.labels("allow").inc()
        return _answer(200, {"allow": True, "state": decision.state.value}, headers)
    if settings.enforcement is Enforcement.SHADOW:
        GATE_DECISIONS.labels("would_deny").inc()
        WOULD_DENY.labels(tenant).inc()
        headers.update({"X-Blast-Radius-Would-Deny": decision.state.value, "X-Accel-Expires": "0"})
        body = {"allow": True, "would_allow": False, "state": decision.state.value}
        return _answer(200, body, headers)
    GATE_DECISIONS.labels("deny").inc()
    retry_after = decision.retry_after_s or 60
    headers["Retry-After"] = str(retry_after)
    body = {
        "allow": False,
        "state": decision.state.value,
        "retry_after_s": retry_after,
        "message": f"tenant {tenant} is isolated by blast-radius ({decision.state.value})",
    }
    return _answer(deny_status, body, headers)
