"""GET /api/v1/openapi.json: the API described from the marshmallow schemas."""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Response, jsonify

from receiver.api import outputs
from receiver.api.admission import FeedQuery
from receiver.api.alerts import AlertQuery
from receiver.api.notifications import NotificationQuery
from receiver.schemas import (
    BreakerActionSchema,
    ByWhomSchema,
    FalsePositiveSchema,
    IncidentQuery,
    NoteSchema,
    NotificationSchema,
    PageSchema,
    PostmortemSchema,
    StatsQuery,
    TenantOut,
    TenantUpdateSchema,
)

bp = Blueprint("openapi", __name__)
TENANT = {
    "name": "tenant_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"},
}
INCIDENT = {
    "name": "incident_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "maxLength": 64},
}
ERRORS = {
    "400": "bad request",
    "401": "missing or invalid token",
    "404": "not found",
    "413": "body too large",
    "415": "not JSON",
    "422": "invalid fields",
    "503": "store unavailable; retry",
}

# (method, path, summary, role, query, body, response, path params)
ROUTES: list[tuple[str, str, str, str | None, Any, Any, Any, list[dict[str, Any]]]] = [
    (
        "post",
        "/webhook/alertmanager",
        "Alertmanager webhook (v4)",
        "webhook",
        None,
        NotificationSchema,
        outputs.WebhookReply,
        [],
    ),
    ("get", "/api/v1/tenants", "Known tenants", "read", PageSchema, None, outputs.TenantPage, []),
    (
        "get",
        "/api/v1/tenants/{tenant_id}",
        "A tenant and its breaker",
        "read",
        None,
        None,
        TenantOut,
        [TENANT],
    ),
    (
        "put",
        "/api/v1/tenants/{tenant_id}",
        "Set a tenant's tier",
        "admin",
        None,
        TenantUpdateSchema,
        TenantOut,
        [TENANT],
    ),
    (
        "post",
        "/api/v1/tenants/{tenant_id}/breaker",
        "Operator action on a breaker",
        "admin",
        None,
        BreakerActionSchema,
        outputs.BreakerActionReply,
        [TENANT],
    ),
    (
        "get",
        "/api/v1/tenants/{tenant_id}/admission",
        "May the gateway serve this tenant?",
        "read",
        None,
        None,
        outputs.AdmissionOut,
        [TENANT],
    ),
    (
        "get",
        "/api/v1/admission",
        "Deny-list feed for gateways (ETag; ?wait= long poll)",
        "read",
        FeedQuery,
        None,
        outputs.FeedOut,
        [],
    ),
    (
        "get",
        "/api/v1/tenants/{tenant_id}/alerts",
        "Alerts that named the tenant",
        "read",
        AlertQuery,
        None,
        outputs.AlertList,
        [TENANT],
    ),
    (
        "get",
        "/api/v1/alerts",
        "Alerts naming no tenant",
        "read",
        AlertQuery,
        None,
        outputs.AlertList,
        [],
    ),
    ("get", "/api/v1/pipeline", "Watchdog heartbeat", "read", None, None, outputs.PipelineOut, []),
    (
        "get",
        "/api/v1/incidents",
        "Incidents, newest first",
        "read",
        IncidentQuery,
        None,
        outputs.IncidentPage,
        [],
    ),
    (
        "get",
        "/api/v1/incidents/{incident_id}",
        "One incident",
        "read",
        None,
        None,
        outputs.IncidentOut,
        [INCIDENT],
    ),
    (
        "get",
        "/api/v1/incidents/{incident_id}/tenants",
        "An incident's tenants, a page at a time",
        "read",
        PageSchema,
        None,
        outputs.IncidentTenantPage,
        [INCIDENT],
    ),
    (
        "post",
        "/api/v1/incidents/{incident_id}/acknowledge",
        "Acknowledge",
        "admin",
        None,
        ByWhomSchema,
        outputs.IncidentOut,
        [INCIDENT],
    ),
    (
        "post",
        "/api/v1/incidents/{incident_id}/resolve",
        "Resolve",
        "admin",
        None,
        ByWhomSchema,
        outputs.IncidentOut,
        [INCIDENT],
    ),
    (
        "post",
        "/api/v1/incidents/{incident_id}/notes",
        "Add a note",
        "admin",
        None,
        NoteSchema,
        outputs.IncidentOut,
        [INCIDENT],
    ),
    (
        "post",
        "/api/v1/incidents/{incident_id}/false-positive",
        "Mark a false positive",
        "admin",
        None,
        FalsePositiveSchema,
        outputs.IncidentOut,
        [INCIDENT],
    ),
    (
        "get",
        "/api/v1/incidents/{incident_id}/postmortem",
        "Blameless postmortem (Markdown)",
        "read",
        None,
        None,
        "markdown",
        [INCIDENT],
    ),
    (
        "put",
        "/api/v1/incidents/{incident_id}/postmortem",
        "Set postmortem fields",
        "admin",
        None,
        PostmortemSchema,
        outputs.IncidentOut,
        [INCIDENT],
    ),
    (
        "get",
        "/api/v1/stats",
        "Incident statistics over a period",
        "read",
        StatsQuery,
        None,
        outputs.StatsOut,
        [],
    ),
    (
        "get",
        "/api/v1/notifications",
        "Notification deliveries",
        "read",
        NotificationQuery,
        None,
        outputs.DeliveryList,
        [],
    ),
    ("get", "/healthz", "The process is up", None, None, None, outputs.HealthOut, []),
    ("get", "/readyz", "Redis reachable (503 otherwise)", None, None, None, outputs.HealthOut, []),
]


def build_spec() -> dict[str, Any]:
    spec = APISpec(
        title="blast-radius receiver",
        version="0.1.0",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={"description": "Per-tenant circuit breakers and incidents from Alertmanager."},
    )
    for name in ("webhook", "read", "admin"):
        spec.components.security_scheme(name, {"type": "http", "scheme": "bearer"})
    spec.components.schema("ErrorEnvelope", schema=outputs.ErrorEnvelope)
    error = {"content": {"application/json": {"schema": "ErrorEnvelope"}}}
    operations: dict[str, dict[str, Any]] = {}
    for method, path, summary, role, query, body, response, params in ROUTES:
        operation: dict[str, Any] = {"summary": summary, "parameters": list(params)}
        if role == "read":
            operation["security"] = [{"read": []}, {"admin": []}]
        elif role:
            operation["security"] = [{role: []}]
        if query is not None:
            operation["parameters"].append({"in": "query", "schema": query})
        if body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": body}},
            }
        if response == "markdown":
            content = {"text/markdown": {"schema": {"type": "string"}}}
        else:
            content = {"application/json": {"schema": response}}
        operation["responses"] = {"200": {"description": "OK", "content": content}}
        for code, text in ERRORS.items():
            operation["responses"][code] = {"description": text, **error}
        operations.setdefault(path, {})[method] = operation
    for path, methods in operations.items():
        spec.path(path=path, operations=methods)
    return spec.to_dict()


_SPEC: dict[str, Any] | None = None


@bp.get("/api/v1/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3 document (public: it holds no data)."""
    global _SPEC
    if _SPEC is None:
        _SPEC = build_spec()
    return jsonify(_SPEC)
