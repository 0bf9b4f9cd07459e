"""The cheap check of a whole notification (`NotificationSchema.checked`) against the
schema it stands in for: it takes only what `NotificationSchema` takes, and gives the
same notification, alerts and rejections included."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from receiver.alerts import Notification
from receiver.schemas import AlertLimits, NotificationSchema
from tests.conftest import isolate_alert, payload
from tests.test_schemas import varied

SCHEMA = NotificationSchema(limits=AlertLimits(max_label_bytes=128, max_labels=4))
MISSING = object()
CAPTURED = [
    "alertmanager-0.25-isolate-firing.json",
    "grouped-truncated-firing.json",
    "grouped-truncated-resolved.json",
    "single-tenant-firing.json",
    "single-tenant-resolved.json",
    "watchdog-firing.json",
]


def changed(**fields: Any) -> dict[str, Any]:
    raw = copy.deepcopy(isolate_alert("acme"))
    for name, value in fields.items():
        if value is MISSING:
            raw.pop(name, None)
        else:
            raw[name] = value
    return raw


def schema_says(raw: Any) -> Notification | str:
    try:
        loaded: Notification = SCHEMA.load(raw)
    except ValidationError as exc:
        return str(exc.messages)
    return loaded


ACCEPTED = [
    *(pytest.param(payload(name), id=name) for name in CAPTURED),
    pytest.param(changed(version=MISSING, receiver=MISSING, groupKey=MISSING), id="defaults"),
    pytest.param(changed(externalURL=MISSING, truncatedAlerts=MISSING), id="more-defaults"),
    pytest.param(changed(groupLabels=MISSING, commonLabels={}), id="no-labels"),
    pytest.param(changed(truncatedAlerts=3), id="truncated"),
    pytest.param(changed(alerts=[]), id="no-alerts"),
    pytest.param(changed(alerts=["not an alert", {"status": "firing"}]), id="bad-alerts"),
    pytest.param(changed(extra={"unknown": 1}), id="unknown-field"),
]
LEFT_TO_THE_SCHEMA = [
    pytest.param(changed(status="pending"), id="status"),
    pytest.param(changed(status=MISSING), id="status-missing"),
    pytest.param(changed(alerts=MISSING), id="alerts-missing"),
    pytest.param(changed(alerts={"0": {}}), id="alerts-not-a-list"),
    pytest.param(changed(version=4), id="version-number"),
    pytest.param(changed(receiver=None), id="receiver-null"),
    pytest.param(changed(groupKey=["k"]), id="groupKey-list"),
    pytest.param(changed(externalURL=1), id="externalURL-number"),
    pytest.param(changed(groupLabels={"tenant_id": 7}), id="group-label-number"),
    pytest.param(changed(commonLabels={"": "x"}), id="common-label-name-empty"),
    pytest.param(changed(commonLabels=None), id="commonLabels-null"),
    pytest.param(changed(truncatedAlerts=-1), id="truncated-negative"),
    pytest.param(changed(truncatedAlerts=True), id="truncated-bool"),
    pytest.param(changed(truncatedAlerts=2.0), id="truncated-float"),
    pytest.param(changed(truncatedAlerts="2"), id="truncated-text"),
    pytest.param([isolate_alert("acme")], id="not-an-object"),
]


@pytest.mark.parametrize("raw", ACCEPTED)
def test_what_alertmanager_sends_is_checked_cheaply_and_loaded_as_the_schema_loads_it(
    raw: dict[str, Any],
) -> None:
    expected = schema_says(raw)
    assert isinstance(expected, Notification)
    assert SCHEMA.checked(raw) == expected


@pytest.mark.parametrize("raw", LEFT_TO_THE_SCHEMA)
def test_the_check_leaves_anything_else_to_the_schema(raw: Any) -> None:
    assert SCHEMA.checked(raw) is None


VALUE = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["firing", "resolved", "4"]),
    st.none(),
    st.booleans(),
    st.integers(min_value=-2, max_value=5),
    st.floats(allow_nan=False, max_value=5),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.one_of(st.text(max_size=3), st.integers()), max_size=3),
)
FIELDS = [
    "version",
    "status",
    "receiver",
    "groupKey",
    "groupLabels",
    "commonLabels",
    "externalURL",
    "truncatedAlerts",
    "alerts",
]


def notifications() -> st.SearchStrategy[dict[str, Any]]:
    """A notification with each field kept, dropped or replaced at random."""
    return varied(isolate_alert("acme"), dict.fromkeys(FIELDS, VALUE))


@settings(max_examples=500, deadline=None)
@given(notifications())
def test_whatever_the_check_takes_the_schema_takes_alike(raw: dict[str, Any]) -> None:
    """Random notifications: the check either stays silent or agrees with the schema."""
    checked = SCHEMA.checked(raw)
    if checked is not None:
        assert checked == schema_says(raw)
