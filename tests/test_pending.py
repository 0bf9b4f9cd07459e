"""The writes that follow a delivery's breakers (guard slots, deny-list) ride on the
board read's round trip, a storm's deny-list goes from a sending thread once that
round trip is answered, and none is ever dropped when nothing carries it. On
fakeredis, redis-server, Sentinel and Cluster."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from redis.connection import Connection

from receiver import create_app
from receiver.config import Settings
from receiver.store import ScopeStore
from receiver.store import keys as k
from receiver.store.admission import SYNC_ENTRIES
from receiver.store.client import open_client
from receiver.store.incidents import IncidentStore
from receiver.store.pending import EARLY_ENTRIES, Pending
from tests.conftest import T0, WEBHOOK, isolate_alert
from tests.servers import RedisServer


def test_a_follow_left_pending_waits_for_the_board_read_to_carry_it(
    store: ScopeStore, redis_client: redis.Redis
) -> None:
    pending = Pending()
    store.follow({"acme": True}, {"acme": (1, "open\t1.0\t\t1\t0")}, pending)
    assert pending and store.slots.isolated() == set() and store.admission.entries() == {}
    board = IncidentStore(redis_client, seen_ttl_s=3600).board(T0, pending=pending)
    assert board.version == 0 and board.incidents == {}
    assert not pending
    assert store.slots.isolated() == {"acme"}
    assert set(store.admission.entries()) == {"acme"}
    store.slots.sync({"acme": False})
    pending.flush(redis_client)  # nothing left to send: the slot is not taken again
    assert store.slots.isolated() == set()


def test_a_follow_nothing_carried_is_flushed(store: ScopeStore, redis_client: redis.Redis) -> None:
    pending = Pending()
    store.follow({"acme": True}, {"acme": (1, "open\t1.0\t\t1\t0")}, pending)
    pending.flush(redis_client)
    assert not pending and store.slots.isolated() == {"acme"}
    assert set(store.admission.entries()) == {"acme"}


def test_a_join_sends_its_deny_list_entry_with_the_board_read(
    redis_server: RedisServer,
    real_redis: redis.Redis,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A new tenant joining the open incident, on redis-server through the receiver's
    own client, in four round trips once the process has read the board before: the
    read (with the guard's counts), the commit (which takes its guard slot, the guard
    having room), the board read (which carries its deny-list entry) and the board
    commit."""
    client = open_client(redis_server.url, 2.0)
    unguarded = replace(settings, max_isolated_percent=100)
    app = create_app({"SETTINGS": unguarded, "REDIS_CLIENT": client, "SWEEPER": False})
    api = app.test_client()
    for tenant in ("t0", "t1"):
        reply = api.post("/webhook/alertmanager", json=isolate_alert(tenant), headers=WEBHOOK)
        assert reply.status_code == 200
    sends: list[bytes] = []
    original = Connection.send_packed_command

    def counted(self: Connection, command: Any, check_health: bool = True) -> None:
        sends.append(command)
        original(self, command, check_health)

    monkeypatch.setattr(Connection, "send_packed_command", counted)
    reply = api.post("/webhook/alertmanager", json=isolate_alert("t2"), headers=WEBHOOK)
    monkeypatch.undo()
    assert reply.status_code == 200
    assert [(t["to"], t["suppressed"]) for t in reply.json["transitions"]] == [("open", False)]
    packed = [
        b"".join(bytes(part) for part in c) if isinstance(c, list) else bytes(c) for c in sends
    ]
    deny_list, board = k.ADMISSION.encode(), k.INCIDENTS_STATE.encode()
    carrying = [c for c in packed if deny_list in c]
    assert len(carrying) == 1 and board in carrying[0] and b"HGETALL" in carrying[0]
    assert len(packed) == 4 and packed.index(carrying[0]) == 2
    assert k.ISOLATED.encode() in packed[0]  # the guard read with the breakers
    assert [k.ISOLATED.encode() in c for c in packed[1:]] == [True, False, False]
    store = app.extensions["blast_radius"].store
    assert store.slots.isolated() == {"t0", "t1", "t2"}
    assert {"t0", "t1", "t2"} <= set(store.admission.entries())
    client.close()


def test_the_follow_is_sent_when_the_board_fails(
    app: Flask, client: FlaskClient, store: ScopeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The breaker committed and the board read then failed: the delivery answers
    5xx (Alertmanager retries), and the slot and deny-list entry are there anyway."""

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise redis.ConnectionError("board unreachable")

    monkeypatch.setattr(IncidentStore, "board", broken)
    reply = client.post("/webhook/alertmanager", json=isolate_alert("acme"), headers=WEBHOOK)
    assert reply.status_code >= 500
    assert store.slots.isolated() == {"acme"}
    assert set(store.admission.entries()) == {"acme"}


@pytest.mark.parametrize("carried", [True, False])
def test_a_storms_deny_list_goes_once_the_board_read_is_in_and_the_flush_waits_for_it(
    store: ScopeStore, redis_client: redis.Redis, carried: bool
) -> None:
    """Past `EARLY_ENTRIES` the deny-list is not carried by the board read (it would
    hold it up while Redis applies it), nor sent before it: it goes once the read is
    answered, or with the flush if nothing carried the rest. Its slots are carried,
    since the board reads them. More entries than one `SYNC` call takes all land."""
    tenants = [f"t{i:04d}" for i in range(max(EARLY_ENTRIES, SYNC_ENTRIES) + 200)]
    pending = Pending()
    store.follow(
        {t: True for t in tenants}, {t: (1, "open\t1.0\t\t1\t0") for t in tenants}, pending
    )
    pipe = redis_client.pipeline(transaction=False)
    assert pending.into(pipe) == 1  # the slots' SADD only
    if carried:
        pipe.execute()
        assert store.admission.entries() == {}  # not sent ahead of the carrying read
        pending.sent()
    else:
        pipe.reset()
    pending.flush(redis_client)
    assert not pending
    assert set(store.admission.entries()) == set(tenants)
    assert store.admission.version() == 2  # one per SYNC call that changed entries
    assert store.slots.isolated() == set(tenants)


def test_an_early_write_that_fails_is_raised_after_the_rest_is_sent(
    redis_client: redis.Redis,
) -> None:
    pending = Pending()
    pending.add(lambda pipe: pipe.set("carried", "1"))
    pending.add(lambda pipe: pipe.execute_command("NO-SUCH-COMMAND"), EARLY_ENTRIES, redis_client)
    assert pending
    with pytest.raises(redis.ResponseError):
        pending.flush(redis_client)
    assert redis_client.get("carried") == "1" and not pending
