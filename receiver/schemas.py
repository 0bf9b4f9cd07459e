"""Marshmallow schemas: tolerant of fields we do not use, strict about those we do."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate

from receiver.alerts import ZERO_TIME, Alert, Notification, label_fingerprint, to_epoch
from receiver.breaker import Action
from receiver.tenants import Tier

MAX_LABEL_NAME = 1024
MAX_PAGE_SIZE = 500
TRUNCATED = "…[truncated]"
NOTE_MAX_CHARS = 4000


@dataclass(frozen=True)
class AlertLimits:
    """What one alert may carry (`RECEIVER_MAX_LABEL_BYTES`, ...): an alert over a
    label bound is rejected alone; an annotation over its bound is cut, marked."""

    max_labels: int = 64
    max_label_bytes: int = 4096
    max_annotations: int = 64
    max_annotation_bytes: int = 16384


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
    """Labels and annotations: names of 1-1024 characters to string values. As an
    alert's `labels` or `annotations`, bounded by its schema's `AlertLimits`: too many
    entries or a label value too long is an error, an annotation too long is cut.

    Checked in one pass; a payload of 10,000 alerts has 100,000 of these pairs, and
    a field object per key and value costs seconds there."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, dict):
            raise ValidationError("Not a valid mapping type.")
        limits: AlertLimits | None = getattr(self.parent, "limits", None)
        max_items = max_bytes = None
        if limits is not None and self.name == "labels":
            max_items, max_bytes = limits.max_labels, limits.max_label_bytes
        elif limits is not None and self.name == "annotations":
            max_items, max_bytes = limits.max_annotations, limits.max_annotation_bytes
        if max_items is not None and len(value) > max_items:
            raise ValidationError(f"At most {max_items} entries, got {len(value)}.")
        errors: dict[str, list[str]] = {}
        out: dict[str, str] = {}
        for name, text in value.items():
            if not isinstance(name, str) or not 1 <= len(name) <= MAX_LABEL_NAME:
                errors[str(name)[:64]] = [f"Name must be 1 to {MAX_LABEL_NAME} characters."]
            elif not isinstance(text, str):
                errors[name[:64]] = ["Not a valid string."]
            elif max_bytes is not None and len(text) * 4 > max_bytes:
                out[name] = self._bounded(name, text, max_bytes, errors)
            else:
                out[name] = text
        if errors:
            raise ValidationError(errors)
        return out

    def _bounded(self, name: str, text: str, max_bytes: int, errors: dict[str, list[str]]) -> str:
        """Only for text that may be over the bound (4 bytes a character at most)."""
        encoded = text.encode()
        if len(encoded) <= max_bytes:
            return text
        if self.name != "annotations":
            errors[name[:64]] = [f"Longer than {max_bytes} bytes ({len(encoded)})."]
            return text
        keep = max_bytes - len(TRUNCATED.encode())
        return encoded[: max(keep, 0)].decode(errors="ignore") + TRUNCATED


def _string_map(**kwargs: Any) -> fields.Dict:
    return StringMap(**kwargs)


class AlertSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    status = fields.String(required=True, validate=validate.OneOf(["firing", "resolved"]))
    labels = _string_map(required=True)
    annotations = _string_map(load_default=dict)

    def __init__(self, *, limits: AlertLimits | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.limits = limits or AlertLimits()

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


def _plain_map(value: Any, max_items: int, max_bytes: int) -> dict[str, str] | None:
    """A copy of `value` if `StringMap` would take it as it is; None if unsure."""
    if not isinstance(value, dict) or len(value) > max_items:
        return None
    for name, text in value.items():
        if not (isinstance(name, str) and 1 <= len(name) <= MAX_LABEL_NAME):
            return None
        if not isinstance(text, str) or len(text) * 4 > max_bytes:
            return None
    return dict(value)


def _plain_time(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        to_epoch(value)
    except ValueError:
        return None
    return value


def checked_alert(raw: dict[str, Any], limits: AlertLimits) -> Alert | None:
    """The alert `AlertSchema(limits=limits)` loads from `raw`, for the shape nearly
    every alert has, without marshmallow's per-field work (most of the time of a
    10,000-alert payload's validation); None where this check cannot tell, and the
    schema then loads it, with its own errors. Never accepts what the schema refuses."""
    status = raw.get("status")
    if status != "firing" and status != "resolved":
        return None
    labels = _plain_map(raw.get("labels"), limits.max_labels, limits.max_label_bytes)
    if "annotations" in raw:
        bounds = (limits.max_annotations, limits.max_annotation_bytes)
        annotations = _plain_map(raw["annotations"], *bounds)
    else:
        annotations = {}
    starts_at = _plain_time(raw.get("startsAt"))
    ends_at = _plain_time(raw.get("endsAt", ZERO_TIME))
    generator_url = raw.get("generatorURL", "")
    fingerprint = raw.get("fingerprint")
    if (
        labels is None
        or annotations is None
        or starts_at is None
        or ends_at is None
        or not isinstance(generator_url, str)
        or not (
            fingerprint is None or (isinstance(fingerprint, str) and 1 <= len(fingerprint) <= 64)
        )
    ):
        return None
    return Alert(
        status=status,
        labels=labels,
        annotations=annotations,
        starts_at=starts_at,
        ends_at=ends_at,
        starts_at_s=to_epoch(starts_at) or 0.0,
        ends_at_s=to_epoch(ends_at),
        fingerprint=fingerprint or label_fingerprint(labels),
        generator_url=generator_url,
    )


def _reason(messages: Any) -> str:
    """A validation error as one short line: `field: message; field: message`."""
    if isinstance(messages, dict):
        parts = [f"{name}: {_reason(inner)}" for name, inner in messages.items()]
        return "; ".join(parts)[:500]
    if isinstance(messages, list):
        return " ".join(_reason(m) for m in messages)
    return str(messages)


class _RawList(fields.List[Any]):
    """A list whose items are taken as they are: `make` validates each alert on its
    own, so the list does not also pass 10,000 items through `Raw` one by one. Still
    a list of anything to the API description."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> list[Any]:
        if not isinstance(value, list):
            raise self.make_error("invalid")
        return value


_TEXT_FIELDS = (("version", "4"), ("receiver", ""), ("groupKey", ""), ("externalURL", ""))
"""A notification's text fields that `NotificationSchema` defaults when absent."""


class NotificationSchema(Schema):
    """Alertmanager's webhook payload, version 4. Each alert is validated on its own:
    an invalid one is rejected with its reason and the others are applied."""

    class Meta:
        unknown = EXCLUDE

    version = fields.String(load_default="4")
    status = fields.String(required=True, validate=validate.OneOf(["firing", "resolved"]))
    receiver = fields.String(load_default="")
    alerts = _RawList(fields.Raw(), required=True)
    groupKey = fields.String(load_default="")
    groupLabels = _string_map(load_default=dict)
    commonLabels = _string_map(load_default=dict)
    externalURL = fields.String(load_default="")
    truncatedAlerts = fields.Integer(load_default=0, validate=validate.Range(min=0), strict=True)

    def __init__(self, *, limits: AlertLimits | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.alert_schema = AlertSchema(limits=limits)

    def checked(self, raw: Any) -> Notification | None:
        """The notification `load` gives for `raw`, for the shape Alertmanager sends,
        without marshmallow's per-field work (most of a one-alert delivery's
        validation); None where this check cannot tell, and `load` then decides, with
        its own errors. Never accepts what `load` refuses."""
        if not isinstance(raw, dict) or not isinstance(raw.get("alerts"), list):
            return None
        status = raw.get("status")
        if status != "firing" and status != "resolved":
            return None
        data: dict[str, Any] = {"status": status, "alerts": raw["alerts"]}
        for name, default in _TEXT_FIELDS:
            value = raw.get(name, default)
            if not isinstance(value, str):
                return None
            data[name] = value
        for name in ("groupLabels", "commonLabels"):
            labels = _plain_map(raw.get(name, {}), sys.maxsize, sys.maxsize)
            if labels is None:
                return None
            data[name] = labels
        truncated = raw.get("truncatedAlerts", 0)
        if type(truncated) is not int or truncated < 0:
            return None
        data["truncatedAlerts"] = truncated
        notification: Notification = self.make(data)
        return notification

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> Notification:
        alerts: list[Alert] = []
        rejected: list[dict[str, str]] = []
        limits = self.alert_schema.limits
        for raw in data["alerts"]:
            alert = checked_alert(raw, limits) if isinstance(raw, dict) else None
            if alert is not None:
                alerts.append(alert)
                continue
            try:
                alerts.append(self.alert_schema.load(raw if isinstance(raw, dict) else {}))
            except ValidationError as exc:
                found = raw.get("fingerprint") if isinstance(raw, dict) else None
                fingerprint = found[:64] if isinstance(found, str) else ""
                reason = _reason(exc.messages) if isinstance(raw, dict) else "not an object"
                rejected.append({"fingerprint": fingerprint, "reason": reason})
        return Notification(
            status=data["status"],
            alerts=alerts,
            rejected=rejected,
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
    text = fields.String(required=True, validate=validate.Length(min=1, max=NOTE_MAX_CHARS))
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
