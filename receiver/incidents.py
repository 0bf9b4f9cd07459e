"""Incidents: one per real problem, prioritized by who is hurt, with a timeline.

Pure data and rules; `correlate` reads and commits them. Priority follows tier and
count: P0 if any platinum tenant or 10+ tenants, P1 if any gold tenant or 5-9, else
P2. Priority only ever rises, and every change is on the timeline.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

from receiver.tenants import TIER_POLICIES, Tier

TIMELINE_CAP = 1000
NOTES_CAP = 100
"""Notes an incident takes; each is at most `schemas.NOTE_MAX_CHARS` long."""
P0_TENANTS = 10
P1_TENANTS = 5


class Priority(StrEnum):
    P0 = "P0"
    P1 = "P1"
    P2 = "P2"


class Scope(StrEnum):
    TENANT = "tenant"
    PLATFORM = "platform"


class Status(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


RESPONSE_SLA_S = {Priority.P0: 15 * 60, Priority.P1: 60 * 60}
RESPONSE_TEAM = {
    Priority.P0: "war room: incident commander, platform lead, on-call, CTO",
    Priority.P1: "platform lead and on-call",
    Priority.P2: "on-call",
}


def priority_for(tiers: Iterable[Tier], count: int) -> Priority:
    tiers = set(tiers)
    if Tier.PLATINUM in tiers or count >= P0_TENANTS:
        return Priority.P0
    if Tier.GOLD in tiers or count >= P1_TENANTS:
        return Priority.P1
    return Priority.P2


def response_sla_s(priority: Priority, tiers: Iterable[Tier]) -> int:
    """P0 15 min, P1 60 min; P2 by the most important tier (silver 4 h, bronze 8 h)."""
    if priority in RESPONSE_SLA_S:
        return RESPONSE_SLA_S[priority]
    return min((TIER_POLICIES[t].response_sla_s for t in tiers), default=8 * 3600)


def highest_tier(tiers: Iterable[Tier]) -> Tier | None:
    return min(tiers, key=lambda t: TIER_POLICIES[t].rank, default=None)


@dataclass
class Event:
    at: float
    kind: str
    message: str
    tenant_id: str | None = None


@dataclass
class IncidentAlert:
    fingerprint: str
    alertname: str
    status: str
    starts_at: float
    updated_at: float
    tenant_id: str | None = None
    expired: bool = False


@dataclass
class Incident:
    id: str
    scope: Scope
    title: str
    created_at: float
    priority: Priority = Priority.P2
    status: Status = Status.OPEN
    response_sla_s: int = 8 * 3600
    sla_due_at: float = 0.0
    tenants: dict[str, Tier] = field(default_factory=dict)
    alerts: dict[str, IncidentAlert] = field(default_factory=dict)
    group_keys: list[str] = field(default_factory=list)
    partial: bool = False
    acknowledged_at: float | None = None
    resolved_at: float | None = None
    quiet_since: float | None = None
    false_positive: bool = False
    isolated_at: dict[str, float] = field(default_factory=dict)
    """First isolation of each tenant, for detection latency (alert start -> isolation)."""
    suppressed: list[str] = field(default_factory=list)
    """Tenants whose isolation the blast-radius guard held back."""
    culprits: dict[str, dict[str, float]] = field(default_factory=dict)
    """Tenants named as the cause of a shared failure, with their shares of the shared
    load (`share`, `baseline_share`, `growth`) when the alert said."""
    victims: dict[str, float] = field(default_factory=dict)
    """Tenants failing with the platform, and when each started failing."""
    contained_at: float | None = None
    """When the victims recovered with the culprits isolated."""
    cost_per_hour: float = 0.0
    victims_cost_per_hour: float = 0.0
    all_tenants_cost_per_hour: float = 0.0
    """What an hour would cost if every known tenant were affected."""
    escalation_level: int = 0
    notes: list[dict[str, Any]] = field(default_factory=list)
    """The notes loaded with the incident (none when loaded for a change), then those
    added since; like the timeline, the store keeps them in a list of their own."""
    notes_count: int = 0
    stored_notes: int = 0
    postmortem: dict[str, Any] = field(default_factory=dict)
    timeline: list[Event] = field(default_factory=list)
    """The events loaded with the incident (none when loaded for a change), then
    those added since; the store keeps them in a list of their own."""
    stored_events: int = 0
    """How many of `timeline` are already stored; the rest are new."""

    def log(self, at: float, kind: str, message: str, tenant_id: str | None = None) -> None:
        self.timeline.append(Event(at, kind, message, tenant_id))

    def add_note(self, at: float, author: str | None, text: str) -> bool:
        """False when the incident already has `NOTES_CAP` notes."""
        if self.notes_count >= NOTES_CAP:
            return False
        self.notes.append({"at": at, "author": author, "text": text})
        self.notes_count += 1
        self.log(at, "note", f"note by {author or 'operator'}")
        return True

    def new_notes(self) -> list[dict[str, Any]]:
        return self.notes[self.stored_notes :]

    def new_events(self) -> list[Event]:
        """Events to store: at most the cap, keeping the first (how a new incident
        began) and the newest."""
        new = self.timeline[self.stored_events :]
        return _capped(new)

    @property
    def is_open(self) -> bool:
        return self.status is not Status.RESOLVED

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON, the timeline included (the first event and the newest).
        Built by hand: `dataclasses.asdict` deep-copies every value and was most of
        the cost of a delivery that changes a large incident."""
        data = self.document()
        data["timeline"] = [dict(vars(event)) for event in _capped(self.timeline)]
        data["notes"] = [dict(note) for note in self.notes]
        return data

    def document(self) -> dict[str, Any]:
        """Plain data for JSON without the timeline, which is stored on its own."""
        skip = ("timeline", "stored_events", "notes", "stored_notes")
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}
        data.update(
            scope=self.scope.value,
            priority=self.priority.value,
            status=self.status.value,
            tenants={tenant: tier.value for tenant, tier in self.tenants.items()},
            alerts={fp: dict(vars(alert)) for fp, alert in self.alerts.items()},
            group_keys=list(self.group_keys),
            isolated_at=dict(self.isolated_at),
            suppressed=list(self.suppressed),
            culprits={tenant: dict(figures) for tenant, figures in self.culprits.items()},
            victims=dict(self.victims),
            notes=[],
            postmortem=json.loads(json.dumps(self.postmortem)),
            # Empty but present, for a reader that expects it (a receiver of the
            # version before, during a rolling deploy or after a rollback).
            timeline=[],
        )
        return data

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        stored: Sequence[Event] = (),
        stored_notes: Sequence[dict[str, Any]] = (),
    ) -> Incident:
        """From a stored document and the events stored beside it. A document written
        before the timeline had its own list carries its events inside: they are
        treated as new, so the next change moves them to the list."""
        values = dict(data)
        values["scope"] = Scope(values["scope"])
        values["priority"] = Priority(values["priority"])
        values["status"] = Status(values["status"])
        values["tenants"] = {t: Tier(tier) for t, tier in values["tenants"].items()}
        values["alerts"] = {f: IncidentAlert(**a) for f, a in values["alerts"].items()}
        embedded = [Event(**e) for e in values.pop("timeline", ())]
        values["timeline"] = [*stored, *embedded]
        values["stored_events"] = len(stored)
        inside = list(values.pop("notes", ()))  # written before notes had their own list
        values["notes"] = [*stored_notes, *inside]
        values["stored_notes"] = len(stored_notes)
        values.setdefault("notes_count", len(inside))
        return cls(**values)


def _capped(events: list[Event]) -> list[Event]:
    if len(events) <= TIMELINE_CAP:
        return events
    return events[:1] + events[-(TIMELINE_CAP - 1) :]


def open_incident(incident_id: str, scope: Scope, title: str, now: float) -> Incident:
    incident = Incident(id=incident_id, scope=scope, title=title, created_at=now)
    if scope is Scope.PLATFORM:
        incident.priority = Priority.P0
    incident.response_sla_s = response_sla_s(incident.priority, [])
    incident.sla_due_at = now + incident.response_sla_s
    incident.log(
        now, "opened", f"{scope.value} incident opened at {incident.priority.value}: {title}"
    )
    return incident


def reprioritize(incident: Incident, now: float) -> None:
    """Raise priority (never lower it) as tenants join; the SLA due time tightens with it."""
    tiers = list(incident.tenants.values())
    wanted = priority_for(tiers, len(tiers))
    order = list(Priority)
    if order.index(wanted) < order.index(incident.priority):
        incident.log(
            now,
            "priority_changed",
            f"priority raised {incident.priority.value} -> {wanted.value} "
            f"({len(tiers)} tenants, highest tier {highest_tier(tiers)})",
        )
        incident.priority = wanted
    sla = response_sla_s(incident.priority, tiers)
    if sla < incident.response_sla_s or incident.response_sla_s == 0:
        incident.response_sla_s = sla
        incident.sla_due_at = min(incident.sla_due_at, incident.created_at + sla)


def add_tenant(
    incident: Incident, tenant_id: str, tier: Tier, now: float, why: str, rank: bool = True
) -> bool:
    """Add a tenant (or update its tier); True if it joined just now. With
    `rank=False` the caller reprioritizes once after adding many."""
    joined = tenant_id not in incident.tenants
    if joined:
        incident.log(
            now, "tenant_joined", f"tenant {tenant_id} ({tier.value}) joined: {why}", tenant_id
        )
    incident.tenants[tenant_id] = tier
    if rank:
        reprioritize(incident, now)
    incident.quiet_since = None
    return joined


def record_alert(
    incident: Incident,
    fingerprint: str,
    alertname: str,
    firing: bool,
    starts_at: float,
    now: float,
    tenant_id: str | None = None,
    group_key: str = "",
) -> None:
    status = "firing" if firing else "resolved"
    known = incident.alerts.get(fingerprint)
    if known is None or known.status != status or known.starts_at != starts_at:
        who = f" for tenant {tenant_id}" if tenant_id else ""
        incident.log(now, f"alert_{status}", f"{alertname}{who} {status}", tenant_id)
    incident.alerts[fingerprint] = IncidentAlert(
        fingerprint, alertname, status, starts_at, now, tenant_id
    )
    if group_key and group_key not in incident.group_keys:
        incident.group_keys.append(group_key)
    if firing:
        incident.quiet_since = None


def expire_alerts(incident: Incident, now: float, timeout_s: float) -> list[str]:
    """Firing alerts with no word for `timeout_s` (silenced ones never resolve) expire."""
    expired = []
    for alert in incident.alerts.values():
        if alert.status == "firing" and not alert.expired and now - alert.updated_at >= timeout_s:
            alert.expired = True
            expired.append(alert.fingerprint)
            incident.log(
                now,
                "alert_expired",
                f"{alert.alertname} expired: no notification for {timeout_s / 3600:g} h",
                alert.tenant_id,
            )
    return expired


def quiet(incident: Incident, isolated: Iterable[str]) -> bool:
    """Every alert resolved (or expired) and none of its tenants isolated any more."""
    still = set(isolated) & set(incident.tenants)
    return not still and all(a.status == "resolved" or a.expired for a in incident.alerts.values())


def acknowledge(incident: Incident, now: float, who: str) -> bool:
    if incident.status is not Status.OPEN:
        return False
    incident.status = Status.ACKNOWLEDGED
    incident.acknowledged_at = now
    incident.log(now, "acknowledged", f"acknowledged by {who}")
    return True


def resolve(incident: Incident, now: float, why: str) -> bool:
    if incident.status is Status.RESOLVED:
        return False
    incident.status = Status.RESOLVED
    incident.resolved_at = now
    incident.log(now, "resolved", f"resolved: {why}")
    return True


def duration_s(incident: Incident, now: float) -> float:
    end = incident.resolved_at if incident.resolved_at is not None else now
    return max(0.0, end - incident.created_at)
