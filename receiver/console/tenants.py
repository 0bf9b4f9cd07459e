"""A tenant's page: tier, breaker and its timeline, alerts, the admission answer a
gateway gets now, and the operator's breaker actions."""

from __future__ import annotations

from flask import Response, flash, redirect, render_template, request, url_for

from receiver.api.alerts import alerts_of
from receiver.api.errors import ApiError
from receiver.api.tenants import act_on_breaker, admission_answer, checked_tenant_id, tenant_view
from receiver.breaker import Action
from receiver.console.blueprint import bp
from receiver.console.session import admin_action, signed_in, who

REASON_MAX = 500


@bp.get("/console/tenants/<tenant_id>")
@signed_in
def tenant_page(tenant_id: str) -> str:
    checked_tenant_id(tenant_id)
    return render_template(
        "tenant.html",
        tenant=tenant_view(tenant_id),
        alerts=alerts_of(tenant_id),
        admission=admission_answer(tenant_id),
        actions=[action.value for action in Action],
    )


@bp.post("/console/tenants/<tenant_id>/breaker")
@admin_action
def tenant_action(tenant_id: str) -> Response:
    checked_tenant_id(tenant_id)
    try:
        action = Action(request.form.get("action", ""))
    except ValueError:
        raise ApiError(422, "unknown breaker action") from None
    reason = request.form.get("reason", "").strip()[:REASON_MAX]
    if not reason:
        raise ApiError(422, "say why: a reason is required")
    events = act_on_breaker(tenant_id, action, f"{reason} (by {who()})")
    flash(
        f"{action.value}: {len(events)} transition(s)" if events else f"{action.value}: no change"
    )
    return redirect(url_for("console.tenant_page", tenant_id=tenant_id))  # type: ignore[return-value]
