"""Alert identity and Alertmanager's time format."""

from __future__ import annotations

import pytest

from receiver.alerts import Kind, to_epoch
from receiver.schemas import NotificationSchema
from tests.conftest import isolate_alert, payload

load = NotificationSchema().load


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-27T12:45:51.033Z", 1795783551.033),
        ("2026-11-27T12:45:51Z", 1795783551.0),
        ("2026-11-27T12:45:51.123456789Z", 1795783551.123456),
        ("2026-11-27T13:45:51.5+01:00", 1795783551.5),
        ("0001-01-01T00:00:00Z", None),
    ],
)
def test_to_epoch(text: str, expected: float | None) -> None:
    """Go's nanosecond times and offsets parse; the zero time is 'no end'."""
    value = to_epoch(text)
    assert value == pytest.approx(expected) if expected is not None else value is None


def test_to_epoch_needs_a_zone() -> None:
    """A time without zone is ambiguous and refused."""
    with pytest.raises(ValueError):
        to_epoch("2026-11-27T12:45:51")


def test_kinds_of_captured_alerts() -> None:
    """Watchdog, isolation and tenant-only alerts are told apart by their labels."""
    assert load(payload("watchdog-firing.json")).alerts[0].kind is Kind.WATCHDOG
    assert load(payload("grouped-truncated-firing.json")).alerts[0].kind is Kind.ISOLATE
    assert load(payload("single-tenant-firing.json")).alerts[0].kind is Kind.TENANT


def test_delivery_key_identity() -> None:
    """Same state -> same key; a new startsAt or a resolution is a new state."""
    first = load(isolate_alert("a")).alerts[0]
    assert first.delivery_key == load(isolate_alert("a")).alerts[0].delivery_key
    refired = load(isolate_alert("a", starts_at="2027-01-15T09:00:00Z")).alerts[0]
    resolved = load(isolate_alert("a", status="resolved")).alerts[0]
    assert len({first.delivery_key, refired.delivery_key, resolved.delivery_key}) == 3


def test_firing_end_time_is_not_part_of_identity() -> None:
    """Re-sends of a firing alert that move endsAt forward are still duplicates."""
    a = load(isolate_alert("a", ends_at="2027-01-15T08:04:00Z")).alerts[0]
    b = load(isolate_alert("a", ends_at="2027-01-15T08:09:00Z")).alerts[0]
    assert a.delivery_key == b.delivery_key


def test_missing_fingerprint_is_derived_from_labels() -> None:
    """An alert without fingerprint gets a stable one from its labels."""
    body = isolate_alert("a")
    del body["alerts"][0]["fingerprint"]
    first = load(body).alerts[0].fingerprint
    assert first and first == load(body).alerts[0].fingerprint
