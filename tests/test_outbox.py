"""The outbox's wire format: what `correlate` commits is what `dispatch` reads."""

from __future__ import annotations

import json

import redis

from receiver.board import Notice
from receiver.store.keys import UPDATES_DUE, UPDATES_SENT, deferred_update_key
from receiver.store.outbox import decode, encode, members
from receiver.store.updates import DeferredUpdates


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


def test_members_are_what_decoding_an_encoding_gives() -> None:
    """The deferred members a board change writes equal what the drain would decode."""
    notices = [
        Notice("tenant_joined", "INC-1", "t1"),
        Notice("tenant_isolated", "INC-1", "t1"),
        Notice("opened", "INC-2"),
    ]
    assert members(notices) == decode(encode(notices))


def test_a_sent_update_keeps_notices_deferred_after_it_was_read(
    redis_client: redis.Redis,
) -> None:
    """A board change may defer a notice between the drain's read and its send: the
    send removes only what it carried, and what is left stays due."""
    updates = DeferredUpdates(redis_client)
    redis_client.sadd(deferred_update_key("INC-1"), "tenant_joined", "tenant_joined:t1")
    redis_client.zadd(UPDATES_DUE, {"INC-1": 100.0})
    carried = updates.deferred(["INC-1"])["INC-1"]
    redis_client.sadd(deferred_update_key("INC-1"), "tenant_joined:t2")  # meanwhile
    updates.sent("INC-1", 200.0, final=False, carried=carried)
    assert updates.deferred(["INC-1"]) == {"INC-1": {"tenant_joined:t2"}}
    assert redis_client.zscore(UPDATES_DUE, "INC-1") == 100.0
    updates.sent("INC-1", 300.0, final=False, carried={"tenant_joined:t2"})
    assert updates.deferred(["INC-1"]) == {} and redis_client.zcard(UPDATES_DUE) == 0
    assert redis_client.hget(UPDATES_SENT, "INC-1") == "300.0"
