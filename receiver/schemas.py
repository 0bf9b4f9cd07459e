"""Marshmallow schemas: tolerant of fields we do not use, strict about those we do."""

from __future__ import annotations

import math
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate

from receiver.alerts import Alert, Notification, label_fingerprint, to_epoch
from receiver.breaker import Action
from receiver.tenants import Tier

MAX_LABEL_NAME = 1024
MAX_PAGE_SIZE = 500


class Timestamp(fields.String):
    """An RFC 3339 time kept as the original text (it is part of an alert's identity)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text: str = super()._deserialize(value, attr, data, **kwargs)
        try:
            to_epoch(text)
        except ValueError as exc:
            raise ValidationError(f"Not an RFC 3339 time: {exc}.") from None
        return text


class StringMap(fields.Dict):
    """Labels and annotations: names of 1-1024 characters to string values.

    Checked in one pass; a payload of 10,000 alerts has 100,000 of these pairs, and
    a field object per key and value costs seconds there."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, dict):
            raise ValidationError("Not a valid mapping type.")
        errors: dict[str, list[str]] = {}
        for name, text in value.items():
            if not 1 <= len(name) <= MAX_LABEL_NAME:
                errors[name[:64]] = [f"Name must be 1 to {MAX_LABEL_NAME} characters."]
            elif not isinstance(text, str):
                errors[name[:64]] = ["Not a valid string."]
        if errors:
            raise ValidationError(errors)
        return dict(value)


def _string_map(**kwargs: Any) -> fields.Dict:
    return StringMap(keys=fields.String(), values=fields.String(), **kwargs)


class AlertSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    status = fields.String(required=True, validate=validate.OneOf(["firing", "resolved"]))
    labels = _string_map(required=True)
    annotations = _string_map(load_default=dict)
    startsAt = Timestamp(required=True)
    endsAt = Timestamp(load_default="0001-01-01T00:00:00Z")
    generatorURL = fields.String(load_default="")
    fingerprint = fields.String(load_default=None, validate=validate.Length(min=1, max=64))

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> Alert:
        return Alert(
            status=data["status"],
            labels=data["labels"],
            annotations=data["annotations"],
            starts_at=data["startsAt"],
            ends_at=data["endsAt"],
            starts_at_s=to_epoch(data["startsAt"]) or 0.0,
            ends_at_s=to_epoch(data["endsAt"]),
            fingerprint=data["fingerprint"] or label_fingerprint(data["labels"]),
            generator_url=data["generatorURL"],
        )


class NotificationSchema(Schema):
    """Alertmanager's webhook payload, version 4."""

    class Meta:
        unknown = EXCLUDE

    version = fields.String(load_default="4")
    status = fields.String(required=True, validate=validate.OneOf(["firing", "resolved"]))
    receiver = fields.String(load_default="")
    alerts = fields.List(fields.Nested(AlertSchema), required=True)
    groupKey = fields.String(load_default="")
    groupLabels = _string_map(load_default=dict)
    commonLabels = _string_map(load_default=dict)
    externalURL = fields.String(load_default="")
    truncatedAlerts = fields.Integer(load_default=0, validate=validate.Range(min=0), strict=True)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> Notification:
        return Notification(
            status=data["status"],
            alerts=data["alerts"],
            receiver=data["receiver"],
            group_key=data["groupKey"],
            group_labels=data["groupLabels"],
            common_labels=data["commonLabels"],
            external_url=data["externalURL"],
            truncated_alerts=data["truncatedAlerts"],
            version=data["version"],
        )


class PageSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=MAX_PAGE_SIZE))


class TenantUpdateSchema(Schema):
    tier = fields.Enum(Tier, by_value=True, required=True)


class BreakerActionSchema(Schema):
    action = fields.Enum(Action, by_value=True, required=True)
    reason = fields.String(load_default=None, validate=validate.Length(max=500))


class TransitionOut(Schema):
    from_state = fields.String(dump_only=True, data_key="from")
    to_state = fields.String(dump_only=True, data_key="to")
    at = fields.Float(dump_only=True)
    reason = fields.String(dump_only=True)
    suppressed = fields.Boolean(dump_only=True)


class BreakerOut(Schema):
    state = fields.String(dump_only=True)
    opened_at = fields.Float(dump_only=True, allow_none=True)
    half_open_at = fields.Float(dump_only=True, allow_none=True)
    open_count = fields.Integer(dump_only=True)
    failure_count = fields.Integer(dump_only=True)
    next_transition_at = fields.Float(dump_only=True, allow_none=True)
    firing_alerts = fields.List(fields.String(), dump_only=True)
    transitions = fields.List(fields.Nested(TransitionOut), dump_only=True)


class TenantOut(Schema):
    tenant_id = fields.String(dump_only=True)
    tier = fields.String(dump_only=True)
    tier_source = fields.String(dump_only=True)
    breaker = fields.Nested(BreakerOut, dump_only=True)


class Moment(fields.Field[float]):
    """A point in time as epoch seconds or RFC 3339, loaded as epoch seconds."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        try:
            moment: float | None = float(value)
        except (TypeError, ValueError):
            try:
                moment = to_epoch(str(value))
            except ValueError:
                moment = None
        if moment is None or not math.isfinite(moment):
            raise ValidationError("Expected epoch seconds or an RFC 3339 time.")
        return moment


class IncidentQuery(PageSchema):
    status = fields.String(
        load_default=None, validate=validate.OneOf(["open", "acknowledged", "resolved"])
    )
    priority = fields.String(load_default=None, validate=validate.OneOf(["P0", "P1", "P2"]))
    scope = fields.String(load_default=None, validate=validate.OneOf(["tenant", "platform"]))
    tenant_id = fields.String(load_default=None, validate=validate.Length(min=1, max=64))
    since = Moment(load_default=0.0)


class StatsQuery(Schema):
    class Meta:
        unknown = EXCLUDE

    since = Moment(load_default=0.0)
    until = Moment(load_default=None)


class ByWhomSchema(Schema):
    by = fields.String(load_default="operator", validate=validate.Length(min=1, max=200))
    reason = fields.String(load_default=None, validate=validate.Length(max=2000))


class NoteSchema(Schema):
    text = fields.String(required=True, validate=validate.Length(min=1, max=10_000))
    author = fields.String(load_default=None, validate=validate.Length(max=200))


class FalsePositiveSchema(Schema):
    false_positive = fields.Boolean(load_default=True)
    reason = fields.String(load_default=None, validate=validate.Length(max=2000))


class ActionItemSchema(Schema):
    title = fields.String(required=True, validate=validate.Length(min=1, max=500))
    owner = fields.String(required=True, validate=validate.Length(min=1, max=200))
    due = fields.Date(load_default=None)


class PostmortemSchema(Schema):
    root_cause = fields.String(load_default=None, validate=validate.Length(max=10_000))
    five_whys = fields.List(
        fields.String(validate=validate.Length(max=2000)),
        load_default=None,
        validate=validate.Length(max=5),
    )
    action_items = fields.List(
        fields.Nested(ActionItemSchema), load_default=None, validate=validate.Length(max=100)
    )
    lessons = fields.List(
        fields.String(validate=validate.Length(max=2000)),
        load_default=None,
        validate=validate.Length(max=50),
    )
