"""Response shapes, for the OpenAPI document (dump-only; views build the data)."""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields

from receiver.schemas import TenantOut, TransitionOut


class Out(Schema):
    """Responses may grow fields; clients must ignore the ones they do not know."""

    class Meta:
        unknown = INCLUDE


class ErrorEnvelope(Out):
    status = fields.String(dump_only=True, metadata={"enum": ["error"]})
    code = fields.Integer(dump_only=True)
    message = fields.String(dump_only=True)
    errors = fields.Raw(dump_only=True, metadata={"description": "field errors, if any"})
    request_id = fields.String(dump_only=True)


class TransitionEventOut(TransitionOut):
    tenant_id = fields.String(dump_only=True)


class NoticeOut(Out):
    kind = fields.String(dump_only=True)
    incident_id = fields.String(dump_only=True)
    tenant_id = fields.String(dump_only=True, allow_none=True)


class WebhookReply(Out):
    """What a delivery did. `incidents` is what the incident board noticed in the changes
    this request made: empty when the delivery's board signals were left for the process
    holding the board's turn (its breakers are committed all the same); a holder's
    lists what it applied for such deliveries too."""

    status = fields.String(dump_only=True)
    accepted = fields.Integer(dump_only=True)
    duplicates = fields.Integer(dump_only=True)
    rejected = fields.List(
        fields.Dict(keys=fields.String(), values=fields.String()), dump_only=True
    )
    truncated_alerts = fields.Integer(dump_only=True)
    transitions = fields.List(fields.Nested(TransitionEventOut), dump_only=True)
    incidents = fields.List(fields.Nested(NoticeOut), dump_only=True)


class Page(Out):
    """A page of a listing: `items` (each listing's own), the total and the page asked for."""

    total = fields.Integer(dump_only=True)
    page = fields.Integer(dump_only=True)
    per_page = fields.Integer(dump_only=True)


class TenantPage(Page):
    items = fields.List(fields.Nested(TenantOut), dump_only=True)


class BreakerActionReply(Out):
    transitions = fields.List(fields.Nested(TransitionEventOut), dump_only=True)
    tenant = fields.Nested(TenantOut, dump_only=True)


class AdmissionOut(Out):
    tenant_id = fields.String(dump_only=True)
    allow = fields.Boolean(dump_only=True)
    state = fields.String(dump_only=True)
    retry_after_s = fields.Integer(dump_only=True, allow_none=True)
    would_allow = fields.Boolean(dump_only=True)
    enforcement = fields.String(dump_only=True, metadata={"enum": ["enforce", "shadow"]})


class FeedEntryOut(Out):
    tenant_id = fields.String(dump_only=True)
    state = fields.String(dump_only=True)
    allowed_percent = fields.Float(dump_only=True)
    would_allow_percent = fields.Float(dump_only=True)
    retry_after_s = fields.Integer(dump_only=True, allow_none=True)
    until = fields.Float(dump_only=True, allow_none=True)


class FeedOut(Out):
    version = fields.String(dump_only=True)
    enforcement = fields.String(dump_only=True, metadata={"enum": ["enforce", "shadow"]})
    generated_at = fields.Float(dump_only=True)
    tenants = fields.List(fields.Nested(FeedEntryOut), dump_only=True)


class StoredAlertOut(Out):
    fingerprint = fields.String(dump_only=True)
    status = fields.String(dump_only=True)
    labels = fields.Dict(keys=fields.String(), values=fields.String(), dump_only=True)
    annotations = fields.Dict(keys=fields.String(), values=fields.String(), dump_only=True)
    startsAt = fields.String(dump_only=True)
    endsAt = fields.String(dump_only=True)
    receivedAt = fields.Float(dump_only=True)


class AlertList(Out):
    items = fields.List(fields.Nested(StoredAlertOut), dump_only=True)


class PipelineOut(Out):
    watchdog_last_seen_at = fields.Float(dump_only=True, allow_none=True)
    watchdog_age_s = fields.Float(dump_only=True, allow_none=True)
    watchdog_max_age_s = fields.Float(dump_only=True)
    healthy = fields.Boolean(dump_only=True)


class ImpactOut(Out):
    cost_per_hour = fields.Float(dump_only=True)
    accrued = fields.Float(dump_only=True)
    all_tenants_cost = fields.Float(dump_only=True)
    avoided = fields.Float(dump_only=True)
    currency = fields.String(dump_only=True)


class IncidentOut(Out):
    id = fields.String(dump_only=True)
    enforcement = fields.String(
        dump_only=True,
        metadata={
            "enum": ["enforce", "shadow"],
            "description": "the receiver's mode now; shadow: no isolation was enforced",
        },
    )
    scope = fields.String(dump_only=True)
    title = fields.String(dump_only=True)
    priority = fields.String(dump_only=True)
    status = fields.String(dump_only=True)
    created_at = fields.Float(dump_only=True)
    acknowledged_at = fields.Float(dump_only=True, allow_none=True)
    resolved_at = fields.Float(dump_only=True, allow_none=True)
    sla_due_at = fields.Float(dump_only=True)
    tenants = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        dump_only=True,
        metadata={"description": "The first tenants by id; all of them through /tenants"},
    )
    tenants_total = fields.Integer(dump_only=True)
    alerts_total = fields.Integer(dump_only=True)
    culprits = fields.Dict(
        keys=fields.String(),
        values=fields.Dict(keys=fields.String(), values=fields.Float()),
        dump_only=True,
    )
    victims = fields.Dict(keys=fields.String(), values=fields.Float(), dump_only=True)
    contained_at = fields.Float(dump_only=True, allow_none=True)
    victims_downtime_s = fields.Float(dump_only=True)
    impact = fields.Nested(ImpactOut, dump_only=True)
    duration_s = fields.Float(dump_only=True)
    escalation_level = fields.Integer(dump_only=True)
    timeline = fields.List(fields.Dict(), dump_only=True)


class IncidentTenantOut(Out):
    tenant_id = fields.String(dump_only=True)
    tier = fields.String(dump_only=True)
    isolated_at = fields.Float(dump_only=True, allow_none=True)
    victim_since = fields.Float(dump_only=True, allow_none=True)
    suppressed = fields.Boolean(dump_only=True)
    culprit = fields.Boolean(dump_only=True)


class IncidentTenantPage(Page):
    items = fields.List(fields.Nested(IncidentTenantOut), dump_only=True)


class IncidentPage(Page):
    items = fields.List(fields.Nested(IncidentOut), dump_only=True)


class StatsOut(Out):
    total = fields.Integer(dump_only=True)
    by_priority = fields.Dict(dump_only=True)
    by_status = fields.Dict(dump_only=True)
    mtta_s = fields.Float(dump_only=True, allow_none=True)
    mttr_s = fields.Float(dump_only=True, allow_none=True)
    false_positive_rate = fields.Float(dump_only=True, allow_none=True)
    cost_accrued = fields.Float(dump_only=True)
    cost_avoided = fields.Float(dump_only=True)


class DeliveryOut(Out):
    id = fields.String(dump_only=True)
    incident_id = fields.String(dump_only=True)
    channel = fields.String(dump_only=True)
    event = fields.String(dump_only=True)
    status = fields.String(dump_only=True)
    attempts = fields.Integer(dump_only=True)
    last_error = fields.String(dump_only=True, allow_none=True)


class DeliveryList(Out):
    items = fields.List(fields.Nested(DeliveryOut), dump_only=True)


class HealthOut(Out):
    status = fields.String(dump_only=True)
    detail = fields.Dict(dump_only=True)
