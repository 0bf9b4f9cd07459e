"""The cheap check of an alert (`schemas.checked_alert`) against the schema it stands
in for: it takes only what `AlertSchema` takes, as the schema would load it, and a
payload gets the same alerts and the same rejections with it as without it."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError, fields

from receiver import schemas
from receiver.alerts import Alert, Notification
from receiver.schemas import AlertLimits, AlertSchema, NotificationSchema, checked_alert
from tests.conftest import isolate_alert

LIMITS = AlertLimits(max_label_bytes=128, max_annotation_bytes=256, max_labels=4)
VALID = isolate_alert("acme")["alerts"][0]
MISSING = object()


def changed(**fields: Any) -> dict[str, Any]:
    raw = copy.deepcopy(VALID)
    for name, value in fields.items():
        if value is MISSING:
            raw.pop(name, None)
        else:
            raw[name] = value
    return raw


def schema_says(raw: dict[str, Any]) -> Alert | str:
    try:
        loaded: Alert = AlertSchema(limits=LIMITS).load(raw)
    except ValidationError as exc:
        return str(exc.messages)
    return loaded


ACCEPTED = [
    pytest.param(changed(), id="captured"),
    pytest.param(changed(status="resolved", endsAt="2027-01-15T08:05:00Z"), id="resolved"),
    pytest.param(changed(fingerprint=MISSING), id="no-fingerprint"),
    pytest.param(changed(fingerprint=None), id="null-fingerprint"),
    pytest.param(changed(fingerprint="f" * 64), id="fingerprint-64"),
    pytest.param(changed(annotations=MISSING), id="no-annotations"),
    pytest.param(changed(annotations={}), id="empty-annotations"),
    pytest.param(changed(endsAt=MISSING), id="no-endsAt"),
    pytest.param(changed(generatorURL=MISSING), id="no-generatorURL"),
    pytest.param(changed(startsAt="2027-01-15T08:00:00.123456789+02:00"), id="nanoseconds"),
    pytest.param(changed(startsAt="0001-01-01T00:00:00Z"), id="zero-start"),
    pytest.param(changed(labels={"tenant_id": "a", "l": "x" * 32}), id="label-at-cheap-bound"),
    pytest.param(changed(extra={"unknown": 1}), id="unknown-field"),
]
REFUSED = [
    pytest.param(changed(status="unknown"), id="status"),
    pytest.param(changed(status=None), id="status-null"),
    pytest.param(changed(status=MISSING), id="status-missing"),
    pytest.param(changed(startsAt="yesterday"), id="startsAt"),
    pytest.param(changed(startsAt="2027-01-15T08:00:00"), id="no-time-zone"),
    pytest.param(changed(startsAt=MISSING), id="startsAt-missing"),
    pytest.param(changed(startsAt=1700000000), id="startsAt-number"),
    pytest.param(changed(endsAt=None), id="endsAt-null"),
    pytest.param(changed(labels={"tenant_id": 7}), id="label-not-a-string"),
    pytest.param(changed(labels={"x" * 1025: "1"}), id="label-name-too-long"),
    pytest.param(changed(labels={"": "1"}), id="label-name-empty"),
    pytest.param(changed(labels={"tenant_id": "b", "v": "x" * 129}), id="label-value"),
    pytest.param(changed(labels={"tenant_id": "b", "v": "é" * 65}), id="label-value-bytes"),
    pytest.param(changed(labels={f"l{i}": "1" for i in range(5)}), id="labels"),
    pytest.param(changed(labels=None), id="labels-null"),
    pytest.param(changed(labels=MISSING), id="labels-missing"),
    pytest.param(changed(labels=["tenant_id"]), id="labels-list"),
    pytest.param(changed(fingerprint=""), id="fingerprint-empty"),
    pytest.param(changed(fingerprint="f" * 65), id="fingerprint-65"),
    pytest.param(changed(fingerprint=12), id="fingerprint-number"),
    pytest.param(changed(annotations="text"), id="annotations"),
    pytest.param(changed(annotations=None), id="annotations-null"),
    pytest.param(changed(generatorURL=None), id="generatorURL-null"),
    pytest.param(changed(generatorURL=3), id="generatorURL-number"),
]
UNSURE = [
    pytest.param(changed(annotations={"description": "x" * 300}), id="annotation-cut"),
    pytest.param(changed(labels={"tenant_id": "b", "v": "x" * 40}), id="label-near-bound"),
]


@pytest.mark.parametrize("raw", ACCEPTED)
def test_common_shapes_are_checked_cheaply_and_loaded_as_the_schema_loads_them(
    raw: dict[str, Any],
) -> None:
    """An alert the schema takes as it is: the cheap check builds the same alert."""
    expected = schema_says(raw)
    assert isinstance(expected, Alert)
    assert checked_alert(raw, LIMITS) == expected


@pytest.mark.parametrize("raw", [*REFUSED, *UNSURE])
def test_the_check_leaves_anything_else_to_the_schema(raw: dict[str, Any]) -> None:
    """An alert the schema refuses, cuts or measures in bytes: the check does not say."""
    assert checked_alert(raw, LIMITS) is None


def notification(alerts: list[Any]) -> dict[str, Any]:
    return {**isolate_alert("acme"), "alerts": alerts}


def schema_alone(body: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Notification:
    with monkeypatch.context() as patch:
        patch.setattr(schemas, "checked_alert", lambda raw, limits: None)
        loaded: Notification = NotificationSchema(limits=LIMITS).load(body)
    return loaded


def test_a_payload_gets_the_same_alerts_and_rejections_as_from_the_schema_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every case above in one payload, with a string and a null among them: the same
    alerts in the same order, and each refused alert with the schema's own reason."""
    raws = [p.values[0] for p in [*ACCEPTED, *REFUSED, *UNSURE]]
    body = notification([*raws, "not an alert", 3])
    loaded = NotificationSchema(limits=LIMITS).load(body)
    assert loaded == schema_alone(body, monkeypatch)
    assert len(loaded.alerts) == len(ACCEPTED) + len(UNSURE)
    assert {"fingerprint": "", "reason": "not an object"} in loaded.rejected
    assert any("Not a valid string." in r["reason"] for r in loaded.rejected)


@pytest.mark.parametrize("alerts", [{"0": {}}, "alerts", 3, None])
def test_alerts_that_are_not_a_list_are_refused_as_a_list_field_refuses_them(
    alerts: Any,
) -> None:
    """The alert list is taken without passing each item through a field; anything
    but a list still gets a plain list field's own reason."""

    class Plain(Schema):
        alerts = fields.List(fields.Raw(), required=True)

    with pytest.raises(ValidationError) as plain:
        Plain().load({"alerts": alerts})
    with pytest.raises(ValidationError) as ours:
        NotificationSchema(limits=LIMITS).load(notification(alerts))
    assert ours.value.messages["alerts"] == plain.value.messages["alerts"]


TEXT = st.one_of(
    st.text(max_size=70),
    st.sampled_from(["firing", "resolved", "2027-01-15T08:00:00Z", "0001-01-01T00:00:00Z"]),
)
VALUE = st.one_of(TEXT, st.none(), st.integers(), st.lists(st.integers(), max_size=2))
STRING_MAP = st.one_of(
    st.dictionaries(st.text(max_size=4), TEXT, max_size=5),
    st.dictionaries(st.text(max_size=4), VALUE, max_size=3),
    VALUE,
)
FIELDS = {
    "status": VALUE,
    "labels": STRING_MAP,
    "annotations": STRING_MAP,
    "startsAt": VALUE,
    "endsAt": VALUE,
    "generatorURL": VALUE,
    "fingerprint": VALUE,
}


@st.composite
def varied(
    draw: st.DrawFn, base: dict[str, Any], fields: dict[str, st.SearchStrategy[Any]]
) -> dict[str, Any]:
    """A copy of `base` with each of `fields` kept, dropped or replaced at random."""
    raw = copy.deepcopy(base)
    for name, values in fields.items():
        choice = draw(st.sampled_from(["keep", "drop", "replace"]))
        if choice == "drop":
            raw.pop(name, None)
        elif choice == "replace":
            raw[name] = draw(values)
    return raw


def alerts() -> st.SearchStrategy[dict[str, Any]]:
    """The captured alert with each field kept, dropped or replaced at random."""
    return varied(VALID, FIELDS)


@settings(max_examples=500, deadline=None)
@given(alerts())
def test_whatever_the_check_takes_the_schema_takes_alike(raw: dict[str, Any]) -> None:
    """Random alerts: the check either stays silent or agrees with the schema."""
    checked = checked_alert(raw, LIMITS)
    if checked is not None:
        assert checked == schema_says(raw)
