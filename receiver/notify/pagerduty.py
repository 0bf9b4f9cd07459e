"""PagerDuty Events API v2: trigger, acknowledge and resolve, deduplicated by incident id."""

from __future__ import annotations

import hashlib
from typing import Any

import requests

from receiver.config import NotifySettings
from receiver.notify.channels import post_json
from receiver.notify.message import TENANTS_LISTED, Message

SUMMARY_MAX = 1024
SEVERITY = {"P0": "critical", "P1": "error", "P2": "warning"}
ACTIONS = {
    "opened": "trigger",
    "priority_raised": "trigger",
    "escalated": "trigger",
    "tenant_isolated": "trigger",
    "watchdog_missing": "trigger",
    "acknowledged": "acknowledge",
    "resolved": "resolve",
}


class PagerDuty:
    name = "pagerduty"

    def __init__(self, settings: NotifySettings) -> None:
        self.settings = settings
        self.per_s = settings.pagerduty_per_s
        self.session = requests.Session()

    def applies(self, message: Message) -> bool:
        return message.event in ACTIONS

    def routing_key(self, tier: str | None) -> str:
        keys = self.settings.pagerduty_routing_keys
        return keys.get(tier or "", keys.get("default", ""))

    def render(self, message: Message) -> dict[str, Any]:
        action = ACTIONS[message.event]
        body: dict[str, Any] = {
            "routing_key": self.routing_key(message.tier),
            "event_action": action,
            "dedup_key": message.incident_id,
        }
        if action != "trigger":
            return body
        body["payload"] = {
            "summary": message.summary[:SUMMARY_MAX],
            "source": "blast-radius",
            "severity": SEVERITY.get(message.priority, "error"),
            "component": "tenant-isolation",
            "group": message.scope,
            "class": message.event,
            "custom_details": {
                "incident": message.incident_id,
                "priority": message.priority,
                "status": message.status,
                "tenants": {
                    t.tenant_id: {"tier": t.tier, "breaker": t.state}
                    for t in message.tenants[:TENANTS_LISTED]
                },
                "tenants_total": message.tenant_count,
                "changes": message.details or None,
                "cost_per_hour_inr": round(message.cost_per_hour),
                "cost_accrued_inr": round(message.accrued),
                "escalation_level": message.escalation_level,
                "escalation_target": message.escalation_target,
            },
        }
        body["links"] = [{"href": href, "text": text} for text, href in message.links.items()]
        return body

    def destination(self, payload: dict[str, Any]) -> str:
        digest = hashlib.sha256(str(payload.get("routing_key")).encode()).hexdigest()[:12]
        return f"pagerduty:{digest}"

    def send(self, payload: dict[str, Any]) -> str:
        return post_json(
            self.session, self.settings.pagerduty_events_url, payload, self.settings.timeout_s
        )
