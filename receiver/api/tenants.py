"""Tenants: their tier, their breaker, and the admission check a gateway makes."""

from __future__ import annotations

import random
from typing import Any

from flask import Blueprint, Response, jsonify

from receiver.api.auth import Role, require
from receiver.api.body import json_body, load, load_query
from receiver.api.deps import get_services, now
from receiver.api.errors import ApiError
from receiver.breaker import (
    Action,
    Transition,
    TransitionEvent,
    admit,
    next_transition_at,
    tick,
)
from receiver.config import Enforcement
from receiver.metrics import WOULD_DENY
from receiver.pipeline import OperatorAction, apply
from receiver.schemas import BreakerActionSchema, PageSchema, TenantOut, TenantUpdateSchema
from receiver.services import Services
from receiver.store import Snapshot
from receiver.tenants import is_valid_tenant_id, resolve_tier

bp = Blueprint("tenants", __name__, url_prefix="/api/v1/tenants")
TRANSITIONS_SHOWN = 50
_tenant_out = TenantOut()
_summary_out = TenantOut(
    only=(
        "tenant_id",
        "tier",
        "tier_source",
        "breaker.state",
        "breaker.open_count",
        "breaker.next_transition_at",
    )
)


def checked_tenant_id(tenant_id: str) -> str:
    if not is_valid_tenant_id(tenant_id):
        raise ApiError(
            400,
            "invalid tenant id",
            {"tenant_id": ["1-64 characters: letters, digits, '.', '_' or '-'."]},
        )
    return tenant_id


def _view(
    services: Services, snapshot: Snapshot, at: float, recorded: list[Transition]
) -> dict[str, Any]:
    settings = services.settings.breaker
    breaker, pending = tick(snapshot.breaker, at, settings)
    # The log is read after the breaker: what was recorded in between is not pending.
    pending = [transition for transition in pending if transition not in recorded]
    tier = resolve_tier(
        snapshot.tier_override, services.registry.get(snapshot.scope), snapshot.tier_label
    )
    return {
        "tenant_id": snapshot.scope,
        "tier": tier.tier.value,
        "tier_source": tier.source,
        "breaker": {
            "state": breaker.state.value,
            "opened_at": breaker.opened_at,
            "half_open_at": breaker.half_open_at,
            "open_count": breaker.open_count,
            "failure_count": breaker.failure_count,
            "next_transition_at": next_transition_at(breaker, settings),
            "firing_alerts": sorted(breaker.firing),
            "transitions": list(reversed(pending)) + recorded,
        },
    }


def tenant_view(tenant_id: str) -> dict[str, Any]:
    """The tenant as `GET /api/v1/tenants/<id>` shows it."""
    services = get_services()
    at = now()
    snapshot = services.store.read({tenant_id: []}, at)[tenant_id]
    recorded = services.store.transitions(tenant_id, TRANSITIONS_SHOWN)
    return _tenant_out.dump(_view(services, snapshot, at, recorded))  # type: ignore[no-any-return]


@bp.get("")
@require(Role.READ)
def list_tenants() -> Response:
    page = load_query(PageSchema())
    services = get_services()
    at = now()
    offset = (page["page"] - 1) * page["per_page"]
    ids, total = services.store.known_tenants(offset, page["per_page"])
    snapshots = services.store.read({tenant_id: [] for tenant_id in ids}, at)
    items = [_summary_out.dump(_view(services, snapshots[i], at, [])) for i in ids]
    return jsonify(
        {"items": items, "total": total, "page": page["page"], "per_page": page["per_page"]}
    )


@bp.get("/<tenant_id>")
@require(Role.READ)
def get_tenant(tenant_id: str) -> Response:
    return jsonify(tenant_view(checked_tenant_id(tenant_id)))


@bp.put("/<tenant_id>")
@require(Role.ADMIN)
def put_tenant(tenant_id: str) -> Response:
    checked_tenant_id(tenant_id)
    update = load(TenantUpdateSchema(), json_body())
    get_services().store.set_tier(tenant_id, update["tier"].value, now())
    return jsonify(tenant_view(tenant_id))


@bp.post("/<tenant_id>/breaker")
@require(Role.ADMIN)
def breaker_action(tenant_id: str) -> Response:
    checked_tenant_id(tenant_id)
    body = load(BreakerActionSchema(), json_body())
    events = act_on_breaker(tenant_id, body["action"], body["reason"])
    return jsonify({"transitions": [e.as_dict() for e in events], "tenant": tenant_view(tenant_id)})


def act_on_breaker(tenant_id: str, action: Action, reason: str | None) -> list[TransitionEvent]:
    """An operator's breaker action through the one pipeline; the API and the console."""
    reason = reason or f"operator: {action.value}"
    return apply(get_services(), OperatorAction(tenant_id, action, reason), now()).transitions


@bp.get("/<tenant_id>/admission")
@require(Role.READ)
def admission(tenant_id: str) -> Response:
    """The gateway's question before serving a tenant. Half-open lets a probe share
    through; in shadow mode every answer allows, `would_allow` says what it would be."""
    answer = admission_answer(checked_tenant_id(tenant_id))
    response = jsonify(answer)
    if not answer["would_allow"] and answer["allow"]:  # shadow mode
        WOULD_DENY.labels(tenant_id).inc()
        response.headers["X-Blast-Radius-Would-Deny"] = answer["state"]
    return response


def admission_answer(tenant_id: str) -> dict[str, Any]:
    """What a gateway asking now is told."""
    services = get_services()
    at = now()
    snapshot = services.store.read({tenant_id: []}, at)[tenant_id]
    breaker, _ = tick(snapshot.breaker, at, services.settings.breaker)
    decision = admit(breaker, at, services.settings.breaker, random.random())
    shadow = services.settings.enforcement is Enforcement.SHADOW
    return {
        "tenant_id": tenant_id,
        "allow": decision.allow or shadow,
        "would_allow": decision.allow,
        "state": decision.state.value,
        "retry_after_s": None if shadow else decision.retry_after_s,
        "enforcement": services.settings.enforcement.value,
    }
