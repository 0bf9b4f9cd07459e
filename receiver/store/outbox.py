"""The incident outbox's wire format, both ways: notices are committed with the board
change that caused them and drained into notifications later."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from receiver import jsontext
from receiver.board import Notice


def encode(notices: Iterable[Notice]) -> list[str]:
    """One entry per incident: the kinds of its notices and, per kind, the tenants
    they name. A payload that makes 10,000 tenants join is one entry, not 20,000."""
    grouped: dict[str, dict[str, set[str]]] = {}
    for notice in notices:
        tenants = grouped.setdefault(notice.incident_id, {}).setdefault(notice.kind, set())
        if notice.tenant_id:
            tenants.add(notice.tenant_id)
    return [
        jsontext.dumps(
            {
                "incident_id": i,
                "kinds": sorted(changes),
                "changes": {kind: sorted(t) for kind, t in changes.items() if t},
            }
        )
        for i, changes in grouped.items()
    ]


def members(notices: Iterable[Notice]) -> dict[str, set[str]]:
    """What `decode` makes of these notices once encoded: per incident, the kinds and
    `kind:tenant` for each tenant named."""
    by_incident: dict[str, set[str]] = defaultdict(set)
    for notice in notices:
        by_incident[notice.incident_id].add(notice.kind)
        if notice.tenant_id:
            by_incident[notice.incident_id].add(f"{notice.kind}:{notice.tenant_id}")
    return by_incident


def kinds_of(members: set[str]) -> set[str]:
    """The kinds of notice among an incident's members; the others are
    `kind:tenant`, naming the tenant a notice was about (tenant ids have no colon)."""
    return {member for member in members if ":" not in member}


def decode(entries: Iterable[str]) -> dict[str, set[str]]:
    """Per incident, the kinds of notice and `kind:tenant` for each tenant named
    (tenant ids have no colon)."""
    by_incident: dict[str, set[str]] = defaultdict(set)
    for entry in entries:
        data = jsontext.loads(entry)
        members = by_incident[data["incident_id"]]
        members.update(data["kinds"])
        for kind, tenants in data.get("changes", {}).items():
            members.update(f"{kind}:{tenant}" for tenant in tenants)
    return by_incident
