"""What a notification says, independent of the channel that carries it."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from receiver.cost import impact
from receiver.incidents import Incident, highest_tier

EVENT_PRECEDENCE = (
    "opened",
    "escalated",
    "resolved",
    "culprit_named",
    "contained",
    "priority_raised",
    "acknowledged",
    "tenant_isolated",
    "isolation_suppressed",
    "tenant_joined",
    "tenant_restored",
    "watchdog_missing",
)
UPDATES = frozenset({"tenant_isolated", "isolation_suppressed", "tenant_joined", "tenant_restored"})
"""Tenant-level events: deferred and sent together, at most one message per
incident per `NOTIFY_UPDATE_INTERVAL_S`. The others go out at once."""


def deferred_until(
    kinds: set[str], last_sent: float | None, now: float, interval_s: float
) -> float | None:
    """When notices of these kinds about one incident may go out, if they must wait:
    tenant-level events of an incident that sent less than `interval_s` ago wait for
    the interval to be up."""
    if not interval_s or not kinds <= UPDATES:
        return None
    due = (now - interval_s if last_sent is None else last_sent) + interval_s
    return due if now < due else None


CHANGE_WORDS = {
    "tenant_isolated": "isolated",
    "isolation_suppressed": "held back by the guard",
    "tenant_joined": "joined",
    "tenant_restored": "restored",
}
NAMES_PER_CHANGE = 20
TENANTS_LISTED = 100
"""Tenants a PagerDuty event or an e-mail lists (a PagerDuty event must stay under
512 KB); the incident in the API has them all."""
HEADLINES = {
    "opened": "Incident opened",
    "escalated": "Incident escalated",
    "resolved": "Incident resolved",
    "culprit_named": "Noisy neighbour found and isolated",
    "contained": "Shared failure contained",
    "priority_raised": "Incident priority raised",
    "acknowledged": "Incident acknowledged",
    "tenant_isolated": "Tenant isolated",
    "isolation_suppressed": "Isolation held back by the blast-radius guard",
    "tenant_joined": "Tenant joined incident",
    "tenant_restored": "Tenant restored",
    "watchdog_missing": "Alert pipeline silent: Watchdog missing",
}


SHADOW_NOTE = "shadow mode: nothing was enforced"
SHADOW_DETAILS = (
    "Shadow mode (ENFORCEMENT=shadow): nothing was enforced, gateways served every request"
)


@dataclass(frozen=True)
class TenantLine:
    tenant_id: str
    tier: str
    state: str


@dataclass(frozen=True)
class Message:
    event: str
    incident_id: str
    title: str
    priority: str
    status: str
    scope: str
    tier: str | None
    tenants: list[TenantLine] = field(default_factory=list)
    """The first `TENANTS_LISTED` tenants by id: as many as any channel lists."""
    tenant_count: int = 0
    """How many tenants the incident has, listed or not."""
    tenant_tiers: frozenset[str] = frozenset()
    """The tiers among all of them."""
    cost_per_hour: float = 0.0
    accrued: float = 0.0
    avoided: float = 0.0
    escalation_level: int = 0
    escalation_target: str | None = None
    details: str = ""
    """What happened to which tenants since the incident's last message."""
    links: dict[str, str] = field(default_factory=dict)
    enforced: bool = True
    """False in shadow mode: breakers moved, but gateways served every request."""

    @property
    def headline(self) -> str:
        return HEADLINES.get(self.event, self.event)

    @property
    def summary(self) -> str:
        tenants = self.tenant_count
        who = f"{tenants} tenant{'s' if tenants != 1 else ''}"
        shadow = "" if self.enforced else f" [{SHADOW_NOTE}]"
        return (
            f"[{self.priority}] {self.headline}: {self.title} ({who}) — {self.incident_id}{shadow}"
        )


def main_event(kinds: list[str]) -> str:
    """The one event a batch of notices about an incident is reported as."""
    ranked = [k for k in EVENT_PRECEDENCE if k in kinds]
    return ranked[0] if ranked else kinds[0]


def describe(changes: Mapping[str, Iterable[str]]) -> str:
    """What happened to which tenants since the incident's last message, in words."""
    parts = []
    for kind, word in CHANGE_WORDS.items():
        tenants = sorted(changes.get(kind, ()))
        if not tenants:
            continue
        names = ", ".join(tenants[:NAMES_PER_CHANGE])
        more = len(tenants) - NAMES_PER_CHANGE
        parts.append(f"{word}: {names}" + (f" and {more} more" if more > 0 else ""))
    return "; ".join(parts)


def listed_tenants(incident: Incident) -> list[str]:
    """The first `TENANTS_LISTED` tenants by id, without sorting them all."""
    return heapq.nsmallest(TENANTS_LISTED, incident.tenants)


def build(
    incident: Incident,
    event: str,
    now: float,
    states: dict[str, str],
    public_url: str,
    escalation_target: str | None = None,
    changes: Mapping[str, Iterable[str]] | None = None,
    enforced: bool = True,
) -> Message:
    cost = impact(incident, now)
    tiers = incident.tiers()
    tier = highest_tier(tiers)
    base = f"{public_url}/api/v1/incidents/{incident.id}"
    listed = listed_tenants(incident)
    return Message(
        event=event,
        incident_id=incident.id,
        title=incident.title,
        priority=incident.priority.value,
        status=incident.status.value,
        scope=incident.scope.value,
        tier=tier.value if tier else None,
        tenants=[
            TenantLine(t, incident.tenants[t].value, states.get(t, "not shown")) for t in listed
        ],
        tenant_count=len(incident.tenants),
        tenant_tiers=frozenset(t.value for t in tiers),
        cost_per_hour=cost.cost_per_hour,
        accrued=cost.accrued,
        avoided=cost.avoided,
        escalation_level=incident.escalation_level,
        escalation_target=escalation_target,
        details="; ".join(
            part for part in ("" if enforced else SHADOW_DETAILS, describe(changes or {})) if part
        ),
        links={"incident": base, "postmortem": f"{base}/postmortem"},
        enforced=enforced,
    )
