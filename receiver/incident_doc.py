"""How an incident is written down: a small header (every scalar, the culprits, and
the tallies that rank it) and, beside it, one hash per collection (tenants, alerts,
isolations, victims, held-back tenants, group keys, per-tenant alert tallies) whose
entries a change writes one by one. A tenant joining a 10,000-tenant incident then
reads and writes a few entries, not the whole incident.

Pure: the store moves these strings in and out of Redis. A header written before the
collections had hashes of their own (`layout` absent) carries them inside; it is
read as a whole incident whose every entry is new, so the first change moves them
out, as the timeline moved before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from operator import attrgetter
from typing import Any, Generic, TypeVar

from receiver import jsontext
from receiver.incidents import Event, Incident, IncidentAlert, Priority, Scope, Status, capped
from receiver.members import Fetch, Members, by_key
from receiver.tenants import Tier, tier_of

LAYOUT = 2
TENANTS_SHOWN = 100
"""Tenants (and alerts) an incident's document lists; the rest are paged through."""

V = TypeVar("V")


@dataclass(frozen=True)
class Codec(Generic[V]):
    encode: Callable[[V], str]
    decode: Callable[[str], V]
    order: Callable[[str, V], Any]


def _alert_out(alert: IncidentAlert) -> str:
    return jsontext.dumps(vars(alert))


def _alert_in(raw: str) -> IncidentAlert:
    return IncidentAlert(**jsontext.loads(raw))


def _by_value(key: str, value: Any) -> Any:
    return (value, key)


COLLECTIONS: dict[str, Codec[Any]] = {
    "tenants": Codec[Tier](attrgetter("value"), tier_of, by_key),
    "alerts": Codec[IncidentAlert](_alert_out, _alert_in, lambda k, a: (a.starts_at, k)),
    "isolated_at": Codec[float](repr, float, by_key),
    "suppressed": Codec[int](str, int, _by_value),
    "victims": Codec[float](repr, float, by_key),
    "group_keys": Codec[int](str, int, _by_value),
    "alert_tally": Codec[list[int]](jsontext.dumps, jsontext.loads, by_key),
}
_NOT_IN_HEADER = {*COLLECTIONS, "timeline", "stored_events", "notes", "stored_notes"}
_INTERNAL = (
    "tier_counts",
    "victim_tiers",
    "counts",
    "layout",
    "live_alerts",
    "live_seen_from",
    "first_victim_at",
)
"""Header fields that rank and count; the document shows what they sum up instead."""
_ENUMS = {"scope": Scope, "priority": Priority, "status": Status}


def header(incident: Incident) -> dict[str, Any]:
    """Every field but the collections (kept apart) and the timeline and notes."""
    data = {f.name: getattr(incident, f.name) for f in fields(incident)}
    for name in _NOT_IN_HEADER:
        data.pop(name)
    for name in _ENUMS:
        data[name] = data[name].value
    data.update(
        culprits={tenant: dict(figures) for tenant, figures in incident.culprits.items()},
        postmortem=jsontext.loads(jsontext.dumps(incident.postmortem)),
        tier_counts=dict(incident.tier_counts),
        victim_tiers=dict(incident.victim_tiers),
        counts={name: len(getattr(incident, name)) for name in COLLECTIONS},
        layout=LAYOUT,
    )
    return data


def changes(incident: Incident) -> dict[str, tuple[dict[str, str], list[str]]]:
    """Per collection: the entries this change wrote (encoded) and those it deleted."""
    out: dict[str, tuple[dict[str, str], list[str]]] = {}
    for name, codec in COLLECTIONS.items():
        members: Members[Any] = getattr(incident, name)
        if members.written or members.deleted:
            written = {key: codec.encode(value) for key, value in members.written.items()}
            out[name] = (written, sorted(members.deleted))
    return out


def decode_fetch(name: str, read: Callable[[Sequence[str] | None], dict[str, str]]) -> Fetch[Any]:
    """A fetch of collection `name`'s entries, decoded, over the store's raw reader."""
    decode = COLLECTIONS[name].decode

    def fetch(keys: Sequence[str] | None) -> dict[str, Any]:
        return {key: decode(raw) for key, raw in read(keys).items()}

    return fetch


def _decoding(raw: Mapping[str, str], decode: Callable[[str], V]) -> Fetch[V]:
    """A fetch over entries already read, decoding only those asked for: a message
    about a 10,000-tenant incident shows its tenants and none of its alerts."""

    def fetch(keys: Sequence[str] | None) -> dict[str, V]:
        if keys is None:
            return {key: decode(value) for key, value in raw.items()}
        return {key: decode(raw[key]) for key in keys if key in raw}

    return fetch


def from_header(
    data: Mapping[str, Any],
    entries: Mapping[str, Mapping[str, str]],
    fetches: Mapping[str, Fetch[Any]] | None,
    stored: Sequence[Event] = (),
    stored_notes: Sequence[dict[str, Any]] = (),
) -> Incident:
    """An incident from its header. With `fetches`, each collection holds the decoded
    `entries` given and fetches the rest on demand; without, `entries` are whole, and
    decoded as they are used."""
    if "layout" not in data:
        return _from_embedded(data, stored, stored_notes)
    values = dict(data)
    counts = values.pop("counts")
    values.pop("layout")
    for name, enum in _ENUMS.items():
        values[name] = enum(values[name])
    for name, codec in COLLECTIONS.items():
        raw = entries.get(name, {})
        fetch: Fetch[Any] | None
        if fetches is None:  # read whole: each entry decoded when first used
            fetch, count, decoded = _decoding(raw, codec.decode), len(raw), {}
        else:
            fetch, count = fetches.get(name), counts.get(name, 0)
            decoded = {key: codec.decode(v) for key, v in raw.items()}
        values[name] = Members(decoded, count=count, fetch=fetch, order=codec.order)
    values["timeline"] = list(stored)
    values["stored_events"] = len(stored)
    values["notes"] = list(stored_notes)
    values["stored_notes"] = len(stored_notes)
    return Incident(**values)


def _from_embedded(
    data: Mapping[str, Any], stored: Sequence[Event], stored_notes: Sequence[dict[str, Any]]
) -> Incident:
    """A document with its collections (and maybe its timeline and notes) inside."""
    known = {f.name for f in fields(Incident)}
    values = {name: value for name, value in data.items() if name in known}
    for name, enum in _ENUMS.items():
        values[name] = enum(values[name])
    listed: dict[str, dict[str, Any]] = {
        "tenants": {t: tier_of(tier) for t, tier in values.pop("tenants", {}).items()},
        "alerts": {f: IncidentAlert(**a) for f, a in values.pop("alerts", {}).items()},
        "isolated_at": dict(values.pop("isolated_at", {})),
        "suppressed": {t: i for i, t in enumerate(values.pop("suppressed", []))},
        "victims": dict(values.pop("victims", {})),
        "group_keys": {g: i for i, g in enumerate(values.pop("group_keys", []))},
    }
    embedded = [Event(**e) for e in values.pop("timeline", ())]
    values["timeline"] = [*stored, *embedded]
    values["stored_events"] = len(stored)
    inside = list(values.pop("notes", ()))
    values["notes"] = [*stored_notes, *inside]
    values["stored_notes"] = len(stored_notes)
    values.setdefault("notes_count", len(inside))
    incident = Incident(**values)
    for name, entries in listed.items():
        members: Members[Any] = getattr(incident, name)
        for key, value in entries.items():
            members[key] = value  # through the hooks: the tallies are counted here
    return incident


def to_dict(incident: Incident, shown: int | None = TENANTS_SHOWN) -> dict[str, Any]:
    """Plain data for JSON: the header, the first `shown` tenants (by id) and alerts,
    every other collection, the timeline (its first event and the newest) and notes."""
    data = header(incident)
    for internal in _INTERNAL:
        data.pop(internal)
    tenants = list(incident.tenants)
    alerts = list(incident.alerts.values())
    data.update(
        tenants={t: incident.tenants[t].value for t in tenants[:shown]},
        tenants_total=len(tenants),
        alerts={a.fingerprint: dict(vars(a)) for a in alerts[:shown]},
        alerts_total=len(alerts),
        isolated_at=dict(incident.isolated_at),
        suppressed=list(incident.suppressed),
        victims=dict(incident.victims),
        group_keys=list(incident.group_keys),
        timeline=[dict(vars(event)) for event in capped(incident.timeline)],
        notes=[dict(note) for note in incident.notes],
    )
    return data
