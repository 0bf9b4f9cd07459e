"""What each channel renders, without sending."""

from __future__ import annotations

import json

import pytest

from receiver.config import NotifySettings
from receiver.incidents import Scope, add_tenant, open_incident
from receiver.notify.email import Email
from receiver.notify.message import (
    NAMES_PER_CHANGE,
    SHADOW_NOTE,
    TENANTS_LISTED,
    Message,
    TenantLine,
    build,
    describe,
    main_event,
)
from receiver.notify.pagerduty import PagerDuty
from receiver.notify.slack import Slack, escape
from receiver.tenants import Tier

SETTINGS = NotifySettings(
    pagerduty_routing_keys={"default": "rk-default", "platinum": "rk-platinum"},
    slack_webhook_url="http://127.0.0.1:9/slack",
    smtp_host="127.0.0.1",
    email_to={"default": ("ops@example.com",), "gold": ("gold@example.com",)},
)


def message(event: str = "opened", priority: str = "P0", **changes: object) -> Message:
    values: dict[str, object] = {
        "event": event,
        "incident_id": "INC-20270115-0001",
        "title": "tenant acme failing",
        "priority": priority,
        "status": "open",
        "scope": "tenant",
        "tier": "platinum",
        "tenants": [TenantLine("acme", "platinum", "open")],
        "cost_per_hour": 150_000.0,
        "links": {"incident": "http://x/api/v1/incidents/INC-20270115-0001"},
    }
    values.update(changes)
    listed: list[TenantLine] = values["tenants"]  # type: ignore[assignment]
    values.setdefault("tenant_count", len(listed))
    values.setdefault("tenant_tiers", frozenset(t.tier for t in listed))
    values["tenants"] = listed[:TENANTS_LISTED]
    return Message(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("priority", "severity"), [("P0", "critical"), ("P1", "error"), ("P2", "warning")]
)
def test_pagerduty_trigger(priority: str, severity: str) -> None:
    """Trigger carries the incident as dedup_key, severity by priority, details and links."""
    body = PagerDuty(SETTINGS).render(message(priority=priority))
    assert body["event_action"] == "trigger" and body["dedup_key"] == "INC-20270115-0001"
    assert body["routing_key"] == "rk-platinum"
    assert body["payload"]["severity"] == severity
    assert body["payload"]["custom_details"]["tenants"] == {
        "acme": {"tier": "platinum", "breaker": "open"}
    }
    assert body["links"][0]["href"].endswith("INC-20270115-0001")


def test_pagerduty_summary_is_capped_and_resolve_is_bare() -> None:
    """Summary at most 1,024 characters; acknowledge/resolve need only the dedup key."""
    long = PagerDuty(SETTINGS).render(message(title="x" * 5000))
    assert len(long["payload"]["summary"]) == 1024
    resolve = PagerDuty(SETTINGS).render(message(event="resolved", tier="gold"))
    assert resolve == {
        "routing_key": "rk-default",
        "event_action": "resolve",
        "dedup_key": "INC-20270115-0001",
    }
    assert not PagerDuty(SETTINGS).applies(message(event="tenant_restored"))


def test_slack_escapes_mentions_and_links() -> None:
    """Text from outside cannot ping @channel or add a link."""
    hostile = "<!channel> <http://evil.example|click me> & co"
    body = Slack(SETTINGS).render(message(title=hostile))
    text = str(body)
    assert "<!channel>" not in text and "<http://evil" not in text
    assert escape(hostile) in text


def test_slack_long_tenant_list_says_how_many_more() -> None:
    """Sections stay within 3,000 characters and 50 blocks; the list is cut with a count."""
    tenants = [TenantLine(f"tenant-{i:03d}", "bronze", "open") for i in range(300)]
    body = Slack(SETTINGS).render(message(tenants=tenants))
    assert len(body["blocks"]) <= 50
    for block in body["blocks"]:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
    assert "and 280 more" in str(body)


def test_email_recipients_by_tier_and_plain_text() -> None:
    """Default recipients plus the tiers' own; a plain-text body naming tenants."""
    mail = Email(SETTINGS).render(
        message(tenants=[TenantLine("a", "gold", "open"), TenantLine("b", "bronze", "open")])
    )
    assert mail["to"] == ["ops@example.com", "gold@example.com"]
    assert "a (gold): breaker open" in mail["body"] and "\n" not in mail["subject"]


def test_a_batch_is_reported_as_its_main_event() -> None:
    """An alert that opens an incident also joins, raises and isolates: one 'opened'."""
    assert main_event(["tenant_joined", "priority_raised", "opened", "tenant_isolated"]) == "opened"
    assert main_event(["tenant_restored", "resolved"]) == "resolved"


def test_changes_are_described_per_kind_and_capped() -> None:
    many = [f"b{i:02d}" for i in range(25)]
    text = describe({"tenant_joined": many, "tenant_isolated": ["b01", "a00"], "opened": []})
    assert text == (
        "isolated: a00, b01; joined: " + ", ".join(many[:NAMES_PER_CHANGE]) + " and 5 more"
    )
    assert describe({}) == ""


def test_every_channel_says_what_changed() -> None:
    changed = message(event="tenant_isolated", details="isolated: b01, b02")
    assert "Since the last message* isolated: b01, b02" in str(Slack(SETTINGS).render(changed))
    assert "Changes:   isolated: b01, b02" in Email(SETTINGS).render(changed)["body"]
    details = PagerDuty(SETTINGS).render(changed)["payload"]["custom_details"]
    assert details["changes"] == "isolated: b01, b02"


def test_shadow_mode_messages_say_nothing_was_enforced() -> None:
    """ENFORCEMENT=shadow: every channel's headline line says so."""
    shadow = message(enforced=False)
    assert SHADOW_NOTE in str(Slack(SETTINGS).render(shadow)["text"])
    assert SHADOW_NOTE in Email(SETTINGS).render(shadow)["subject"]
    assert SHADOW_NOTE in PagerDuty(SETTINGS).render(shadow)["payload"]["summary"]
    assert SHADOW_NOTE not in message().summary


def test_large_incidents_list_a_bounded_number_of_tenants() -> None:
    """A 10,000-tenant incident must not make a PagerDuty event over its 512 KB limit or
    an e-mail of 10,000 lines; both say how many there are."""
    tenants = [TenantLine(f"tenant-{i:05d}", "bronze", "open") for i in range(10_000)]
    big = message(tenants=tenants)
    event = PagerDuty(SETTINGS).render(big)
    assert len(event["payload"]["custom_details"]["tenants"]) == TENANTS_LISTED
    assert event["payload"]["custom_details"]["tenants_total"] == 10_000
    assert len(json.dumps(event)) < 512 * 1024
    body = Email(SETTINGS).render(big)["body"]
    assert f"...and {10_000 - TENANTS_LISTED} more" in body
    assert body.count("breaker open") == TENANTS_LISTED


def test_a_message_lists_the_first_tenants_and_counts_and_tiers_them_all() -> None:
    """Built from a 300-tenant incident: the first 100 by id listed with their states,
    all 300 counted, and the tier of a tenant past the list still routes the e-mail."""
    incident = open_incident("INC-1", Scope.TENANT, "many", 0.0)
    for n in range(299):
        add_tenant(incident, f"t{n:03d}", Tier.BRONZE, 0.0, "why")
    add_tenant(incident, "zz-last", Tier.GOLD, 0.0, "why")
    built = build(incident, "opened", 60.0, {"t000": "open"}, "http://x")
    assert [t.tenant_id for t in built.tenants] == [f"t{n:03d}" for n in range(TENANTS_LISTED)]
    assert built.tenants[0] == TenantLine("t000", "bronze", "open")
    assert built.tenants[1].state == "not shown"
    assert (built.tenant_count, built.tenant_tiers, built.tier) == (
        300,
        frozenset({"bronze", "gold"}),
        "gold",
    )
    assert "(300 tenants)" in built.summary
    assert Email(SETTINGS).render(built)["to"] == ["ops@example.com", "gold@example.com"]
    assert "and 280 more" in str(Slack(SETTINGS).render(built))
