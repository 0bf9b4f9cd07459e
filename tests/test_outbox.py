"""The outbox's wire format: what `correlate` commits is what `dispatch` reads."""

from __future__ import annotations

import json

from receiver.board import Notice
from receiver.store.outbox import decode, encode


def test_one_entry_per_incident_however_many_tenants() -> None:
    """Ten thousand tenants joining one incident make one entry, with every tenant."""
    notices = [Notice("opened", "INC-1")]
    notices += [Notice("tenant_joined", "INC-1", f"t{i}") for i in range(10_000)]
    notices.append(Notice("resolved", "INC-2"))
    entries = encode(notices)
    assert len(entries) == 2
    first = json.loads(entries[0])
    assert first["kinds"] == ["opened", "tenant_joined"]
    assert len(first["changes"]["tenant_joined"]) == 10_000


def test_decoding_gives_back_kinds_and_the_tenants_each_named() -> None:
    """Round trip: kinds as they are, tenants as `kind:tenant`, entries merged per incident."""
    entries = encode([Notice("tenant_isolated", "INC-1", "acme")]) + encode(
        [Notice("priority_raised", "INC-1"), Notice("tenant_isolated", "INC-1", "globex")]
    )
    assert decode(entries) == {
        "INC-1": {
            "tenant_isolated",
            "priority_raised",
            "tenant_isolated:acme",
            "tenant_isolated:globex",
        }
    }
