"""The incident's written form: a header with its tallies, and a hash per collection."""

from __future__ import annotations

from typing import Any

from receiver.attribution import note_victim
from receiver.incident_doc import COLLECTIONS, changes, from_header, header, to_dict
from receiver.incidents import (
    Incident,
    Scope,
    add_tenant,
    expire_alerts,
    open_incident,
    record_alert,
    reprioritize,
)
from receiver.members import Members
from receiver.tenants import Tier

T = 1_000_000.0


def _busy() -> Incident:
    incident = open_incident("INC-1", Scope.PLATFORM, "x", T)
    add_tenant(incident, "a", Tier.GOLD, T, "why")
    add_tenant(incident, "b", Tier.BRONZE, T, "why")
    note_victim(incident, "b", T + 5)
    record_alert(incident, "fp-a", "X", True, T, T, "a", "gk-a")
    record_alert(incident, "fp-b", "X", True, T, T, "b", "gk-b")
    record_alert(incident, "fp-p", "P", True, T, T, None, "gk-p")
    incident.isolated_at["a"] = T + 1
    incident.suppressed.add("c", 0)
    incident.suppressed.add("b", 1)
    return incident


def _stored(incident: Incident) -> dict[str, dict[str, str]]:
    return {part: written for part, (written, _) in changes(incident).items()}


def test_what_is_written_reads_back_the_same() -> None:
    """Header plus the written entries read back as an equal incident, tallies included."""
    incident = _busy()
    again = from_header(header(incident), _stored(incident), None, incident.timeline)
    incident.stored_events = len(incident.timeline)
    assert again == incident
    assert (again.tier_counts, again.victim_tiers, again.live_alerts) == (
        {"gold": 1, "bronze": 1},
        {"bronze": 1},
        3,
    )
    assert list(again.suppressed) == ["c", "b"]


def test_the_tallies_follow_changes() -> None:
    """A tier change, a resolved and an expired alert move the tallies, not a recount."""
    incident = _busy()
    add_tenant(incident, "b", Tier.SILVER, T, "tier changed")
    record_alert(incident, "fp-a", "X", False, T, T + 2, "a")
    expire_alerts(incident, T + 10_000_000, 60)
    assert incident.tier_counts == {"gold": 1, "silver": 1}
    assert incident.victim_tiers == {"silver": 1}
    assert incident.live_alerts == 0
    assert incident.alert_tally["a"] == [0, 1] and incident.alert_tally[""] == [0, 1]


def test_a_part_read_fetches_only_what_it_is_asked() -> None:
    """A change read holds a few entries; another is fetched alone, a walk fetches all."""
    incident = _busy()
    stored = _stored(incident)
    asked: list[Any] = []

    def fetches(part: str) -> Any:
        def fetch(keys: Any) -> dict[str, Any]:
            asked.append((part, keys))
            from receiver.incident_doc import COLLECTIONS

            raw = stored.get(part, {})
            wanted = raw if keys is None else {k: raw[k] for k in keys if k in raw}
            return {k: COLLECTIONS[part].decode(v) for k, v in wanted.items()}

        return fetch

    parts = ("tenants", "alerts", "isolated_at", "suppressed", "victims", "group_keys")
    part = from_header(
        header(incident), {}, {p: fetches(p) for p in (*parts, "alert_tally")}, incident.timeline
    )
    before = Members.full_fetches
    add_tenant(part, "d", Tier.PLATINUM, T, "why")
    reprioritize(part, T)
    assert asked == [("tenants", ["d"])]
    assert (len(part.tenants), part.priority.value) == (3, "P0")
    assert Members.full_fetches == before
    assert sorted(part.tenants) == ["a", "b", "d"]
    assert Members.full_fetches == before + 1
    assert changes(part)["tenants"] == ({"d": "platinum"}, [])


def test_a_sweep_before_any_alert_could_expire_reads_none_of_them() -> None:
    """The bound travels in the header: a change read of a big incident sweeps for
    expiry without fetching its alerts, until one could be due."""
    incident = _busy()
    stored = _stored(incident)
    asked: list[Any] = []

    def fetch(keys: Any) -> dict[str, Any]:
        asked.append(keys)
        raw = stored["alerts"]
        wanted = raw if keys is None else {k: raw[k] for k in keys if k in raw}
        return {k: COLLECTIONS["alerts"].decode(v) for k, v in wanted.items()}

    def part() -> Incident:
        return from_header(header(incident), {}, {"alerts": fetch}, incident.timeline)

    assert expire_alerts(part(), T + 59, 60) == [] and asked == []
    assert sorted(expire_alerts(part(), T + 60, 60)) == ["fp-a", "fp-b", "fp-p"]
    assert asked == [None]
    assert "live_seen_from" not in to_dict(incident)


def test_an_old_document_with_collections_inside_moves_them_out() -> None:
    """A header without a layout carries its collections: every entry is new."""
    incident = _busy()
    old = to_dict(incident, shown=None)
    old["notes"] = [{"at": T, "author": "asha", "text": "before"}]
    del old["notes_count"]
    moved = from_header(old, {}, None)
    assert dict(moved.tenants) == {"a": Tier.GOLD, "b": Tier.BRONZE}
    assert (moved.tier_counts, moved.live_alerts, moved.first_victim_at) == (
        incident.tier_counts,
        3,
        T + 5,
    )
    assert set(_stored(moved)["alerts"]) == {"fp-a", "fp-b", "fp-p"}
    assert (moved.notes_count, moved.new_notes()) == (1, old["notes"])
    assert "tenants" not in header(moved) and header(moved)["counts"]["tenants"] == 2


def test_the_document_lists_the_first_tenants_and_counts_all() -> None:
    """Past the shown number, the document lists the first tenants by id and the total."""
    incident = open_incident("INC-1", Scope.TENANT, "x", T)
    for n in range(5):
        add_tenant(incident, f"t{n}", Tier.BRONZE, T, "why")
    data = to_dict(incident, shown=2)
    assert (data["tenants"], data["tenants_total"]) == ({"t0": "bronze", "t1": "bronze"}, 5)
