"""Incidents in Redis: each a small header with a hash per collection beside it
(`incident_doc`) and its timeline and notes in lists (a change appends and writes
entries instead of rewriting them), indexes by creation and resolution time, the
alert states already on the board, and a small state hash (`version`, the open
incidents, the current incident of each scope, per-day id counters).

A change reads with `READ_INCIDENTS` and commits with `COMMIT_INCIDENTS`
(`board_scripts`), a compare-and-set on that version, so
two workers never open two incidents for one problem and never lose each other's
timeline entries. Concurrent changes also take turns (a short lock), so under a burst
they queue instead of each redoing the work after losing the compare-and-set."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import redis

from receiver import jsontext
from receiver.incident_doc import COLLECTIONS, changes, decode_fetch, from_header, header
from receiver.incidents import TIMELINE_CAP, Event, Incident
from receiver.members import Fetch
from receiver.store import keys as k
from receiver.store.board_scripts import COMMIT_INCIDENTS, READ_INCIDENTS, TAKE_OR_HAND_OFF
from receiver.store.overlap import submit
from receiver.store.pending import Pending

PARTS = tuple(COLLECTIONS)
Asked = dict[str, list[str]]
"""Per collection, the keys of the entries a read asks for."""


def _asked(wanted: Mapping[str, Iterable[str]]) -> Asked:
    return {part: list(dict.fromkeys(wanted.get(part, ()))) for part in PARTS}


TURN_WAIT_S = 2.0
"""How long a change waits for its turn at the board before going ahead anyway."""
HANDOFF_BATCH = 500
"""The most hand-offs one board change applies."""
MAX_HANDOFFS = 20_000
"""The most the hand-off list holds: past it, a delivery waits for its turn."""
HANDOFF_FRESH_MS = 1000
"""Signals are left only to a holder that took or renewed the turn this recently: one
that died holding it gets none after that, and those it got are applied by the next
change (any change that reads the hand-offs may apply them; the board's version
check keeps each applied once)."""

# KEYS[1] lock key, ARGV[1] owner: delete the lock only if this owner still holds it
# (it may have expired and been taken by another process meanwhile).
RELEASE_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass
class Board:
    """The incidents state as read: what is open, and the documents asked for."""

    version: int
    fields: dict[str, str]
    incidents: dict[str, Incident]
    seen: frozenset[str] = frozenset()
    """Delivery keys of alert states already put on the board."""
    last_sent: dict[str, float] = field(default_factory=dict)
    """When each incident that sent a notification sent its latest."""
    handoffs: list[str] = field(default_factory=list)
    """Signals other deliveries left for the turn's holder (`Turn.hand_off`), oldest
    first, if asked for."""

    @property
    def open_ids(self) -> list[str]:
        ids: list[str] = jsontext.loads(self.fields.get("open") or "[]")
        return ids

    def current(self, scope: str) -> str | None:
        return self.fields.get(f"current:{scope}") or None


@dataclass
class Turn:
    """This process's turn at the board. Taken lazily, with the board read it guards
    (one round trip for both); true once held."""

    token: str
    deadline: float
    """Past it (monotonic time), the change goes ahead without the turn."""
    ttl_ms: int
    hand_off: str = ""
    """This delivery's encoded signals: while another holds the turn, they are left
    for the holder to apply (`handed`) rather than waiting. "" waits."""
    held: bool = False
    waited_out: bool = False
    released: bool = False
    handed: bool = False
    waiting: int = 0
    """Hand-offs left after the last commit, which kept the turn to apply them."""

    def __bool__(self) -> bool:
        return self.held

    @property
    def owner(self) -> str | None:
        """The lock token to give back with a commit, if there is one to give back."""
        return self.token if self.held and not self.released else None


@dataclass
class BoardChange:
    expected_version: int
    fields: dict[str, str] = field(default_factory=dict)
    delivery_keys: list[str] = field(default_factory=list)
    outbox: list[str] = field(default_factory=list)
    put: dict[str, Incident] = field(default_factory=dict)
    delete: list[str] = field(default_factory=list)
    deferred: dict[str, tuple[set[str], float]] = field(default_factory=dict)
    """Per incident (among `put`), notices deferred to its next update, and when due."""


class IncidentStore:
    def __init__(self, client: redis.Redis, seen_ttl_s: float) -> None:
        self.client = client
        self.seen_ttl_s = seen_ttl_s
        self._commit = client.register_script(COMMIT_INCIDENTS)
        self._release = client.register_script(RELEASE_LOCK)
        self._read = client.register_script(READ_INCIDENTS)
        self._take = client.register_script(TAKE_OR_HAND_OFF)
        self._open_last_read: list[str] = []

    def board(
        self,
        now: float,
        extra_ids: Iterable[str] = (),
        delivery_keys: Sequence[str] = (),
        wanted: Mapping[str, Iterable[str]] | None = None,
        turn: Turn | None = None,
        pending: Pending | None = None,
        handoffs: bool = False,
    ) -> Board:
        """The state hash plus every open incident and any others asked for, and which
        of `delivery_keys` the board has seen. Each incident holds the entries of its
        collections named in `wanted` (collection -> keys), read in the same round
        trip as the headers, and fetches any other on demand. A `turn` not yet held
        is taken first, in the same round trip as the reads it guards. The incidents
        open at this process's last read are read in that round trip too, beside the
        state that says which are open now; only those opened since take a second.
        Writes left `pending` ride on that round trip too. With `handoffs`, the
        signals other deliveries left for the turn's holder are read too (the oldest
        `HANDOFF_BATCH`). A `turn` handing off its signals (`Turn.handed`) reads
        nothing of use."""
        asked = _asked(wanted or {})
        guess = list(dict.fromkeys([*self._open_last_read, *extra_ids]))

        def reads(pipe: redis.client.Pipeline, taking: bool) -> None:
            pipe.hgetall(k.INCIDENTS_STATE)
            pipe.hgetall(k.UPDATES_SENT)
            if delivery_keys:
                pipe.zmscore(k.INCIDENTS_SEEN, list(delivery_keys))
            if handoffs and not taking:  # else the taking script reads them
                pipe.lrange(k.INCIDENTS_HANDOFF, 0, HANDOFF_BATCH - 1)
            if guess:
                self._read(*self._read_call(guess, asked), client=pipe)

        replies, listed = self._taking(turn, reads, pending, HANDOFF_BATCH if handoffs else 0)
        if turn is not None and turn.handed:
            return Board(0, {}, {})
        fields: dict[str, str] = replies[0]
        last_sent = {incident_id: float(at) for incident_id, at in replies[1].items()}
        scores = replies[2] if delivery_keys else []
        seen = frozenset(
            key for key, score in zip(delivery_keys, scores, strict=True) if score and score > now
        )
        open_ids: list[str] = jsontext.loads(fields.get("open") or "[]")
        self._open_last_read = open_ids
        ids = list(dict.fromkeys([*open_ids, *extra_ids]))
        found = self._decode_read(guess, asked, replies[-1]) if guess else {}
        missing = [incident_id for incident_id in ids if incident_id not in guess]
        if missing:
            found.update(self._changing(missing, asked))
        incidents = {i: found[i] for i in ids if i in found}
        version = int(fields.get("version") or 0)
        left: list[str] = []
        if handoffs:
            left = listed if listed is not None else replies[3 if delivery_keys else 2]
        return Board(version, fields, incidents, seen, last_sent, left)

    def _taking(
        self,
        turn: Turn | None,
        reads: Callable[[redis.client.Pipeline, bool], None],
        pending: Pending | None = None,
        listing: int = 0,
    ) -> tuple[list[Any], list[str] | None]:
        """`reads` in one round trip, behind an attempt to take `turn` if it is not
        held yet; while another holds it, wait (backing off) and try again, until the
        turn's deadline, after which the reads go ahead without it. The first try
        also carries the `pending` writes, after the reads. `reads` is told whether
        this try takes the turn; if it does, the script taking it also reads the
        oldest `listing` hand-offs, returned beside the replies (None otherwise: a
        delivery that hands off its own signals reads none)."""
        pause = 0.001
        while True:
            pipe = self.client.pipeline(transaction=False)
            taking = turn is not None and not turn.held and not turn.waited_out
            if turn is not None and taking:
                keys = [k.INCIDENTS_TURN, k.INCIDENTS_HANDOFF]
                args: list[Any] = [turn.token, turn.ttl_ms, turn.hand_off]
                args += [MAX_HANDOFFS, HANDOFF_FRESH_MS, listing]
                self._take(keys=keys, args=args, client=pipe)
            reads(pipe, taking)
            asked = len(pipe)
            if pending is not None:
                pending.into(pipe)
            replies: list[Any] = pipe.execute()[:asked] if len(pipe) else []
            if pending is not None:
                pending.sent()
            if turn is None or not taking:
                return replies, None
            took, *listed = replies[0]
            if took == 1:
                turn.held = True
                return replies[1:], listed
            if took == -1:
                turn.handed = True
                return replies[1:], None
            if time.monotonic() >= turn.deadline:
                turn.waited_out = True
                if not listing:
                    return replies[1:], None
                # Going ahead without the turn: read again, the hand-offs with the rest.
                continue
            time.sleep(random.uniform(pause / 2, pause))
            pause = min(pause * 1.5, 0.01)

    def _changing(self, ids: Sequence[str], asked: Asked) -> dict[str, Incident]:
        """Incidents for a change: headers and the `asked` entries, in one call."""
        if not ids:
            return {}
        return self._decode_read(ids, asked, self._read(*self._read_call(ids, asked)))

    def _read_call(self, ids: Sequence[str], asked: Asked) -> tuple[list[str], list[Any]]:
        """`READ_INCIDENTS`' keys and arguments for these incidents' headers and entries."""
        args: list[Any] = [len(PARTS)]
        for part in PARTS:
            args += [len(asked[part]), *asked[part]]
        return [key for incident_id in ids for key in self._read_keys(incident_id)], args

    def _decode_read(
        self, ids: Sequence[str], asked: Asked, reply: list[Any]
    ) -> dict[str, Incident]:
        values = iter(reply)
        incidents = {}
        for incident_id in ids:
            header = next(values)
            entries = [next(values) for _ in PARTS]
            if header is None:
                continue
            incident = from_header(jsontext.loads(header), {}, self._fetches(incident_id))
            for part, raw in zip(PARTS, entries, strict=True):
                decode = COLLECTIONS[part].decode
                found = {
                    key: decode(v) for key, v in zip(asked[part], raw, strict=True) if v is not None
                }
                getattr(incident, part).loaded(found, asked[part])
            incidents[incident_id] = incident
        return incidents

    @staticmethod
    def _read_keys(incident_id: str) -> list[str]:
        parts = [k.incident_part_key(incident_id, part) for part in PARTS]
        return [k.incident_key(incident_id), *parts]

    def outlines(self, ids: Sequence[str]) -> dict[str, Incident]:
        """Incidents with their headers read now, in one call, and their entries read
        on first use: a message needs the tallies and the first few tenants, not an
        incident's every alert (a storm's are ten thousand)."""
        return self._changing(list(ids), _asked({})) if ids else {}

    def get_many(self, ids: Sequence[str], timeline: bool = False) -> dict[str, Incident]:
        """Whole incidents by id; `timeline` also reads their stored timelines and notes
        (to show them; a change needs neither, and new events are appended)."""
        if not ids:
            return {}
        headers: list[str | None] = self.client.mget([k.incident_key(i) for i in ids])  # type: ignore[assignment]
        found = [(i, jsontext.loads(doc)) for i, doc in zip(ids, headers, strict=True) if doc]
        pipe = self.client.pipeline(transaction=False)
        for incident_id, _ in found:
            if timeline:
                pipe.lrange(k.timeline_key(incident_id), 0, -1)
                pipe.lrange(k.notes_key(incident_id), 0, -1)
            for part in PARTS:
                pipe.hgetall(k.incident_part_key(incident_id, part))
        replies = iter(pipe.execute() if len(pipe) else [])
        incidents = {}
        for incident_id, data in found:
            events = [Event(**jsontext.loads(e)) for e in next(replies)] if timeline else []
            notes = [jsontext.loads(n) for n in next(replies)] if timeline else []
            entries = {part: next(replies) for part in PARTS}
            incidents[incident_id] = from_header(data, entries, None, events, notes)
        return incidents

    def _fetches(self, incident_id: str) -> dict[str, Fetch[Any]]:
        def reader(key: str) -> Callable[[Sequence[str] | None], dict[str, str]]:
            def read(fields: Sequence[str] | None) -> dict[str, str]:
                if fields is None:
                    return self.client.hgetall(key)  # type: ignore[return-value]
                raw: list[str | None] = self.client.hmget(key, list(fields))  # type: ignore[assignment]
                return {f: v for f, v in zip(fields, raw, strict=True) if v is not None}

            return read

        return {
            part: decode_fetch(part, reader(k.incident_part_key(incident_id, part)))
            for part in PARTS
        }

    def commit(
        self,
        change: BoardChange,
        now: float,
        turn: Turn | None = None,
        handoffs: int = 0,
        keep: bool = False,
        meanwhile: Callable[[], None] | None = None,
    ) -> bool:
        """Apply the change if the board is still at its version, with the first
        `handoffs` of the hand-off list it applied taken off. A committed change gives
        back the `turn` it was made in, in the same step; with `keep`, the turn is kept
        while hand-offs wait (`Turn.waiting`), for the holder to apply them next.
        `meanwhile` runs while Redis applies the change (sent from a sending thread)."""
        keys = [
            k.INCIDENTS_STATE,
            k.INCIDENTS_CREATED,
            k.INCIDENTS_RESOLVED,
            k.INCIDENTS_SEEN,
            k.INCIDENTS_OUTBOX,
            k.INCIDENTS_TURN,
            k.UPDATES_DUE,
            k.INCIDENTS_HANDOFF,
        ]
        owner = turn.owner if turn is not None else None
        args: list[Any] = [change.expected_version, repr(now), repr(now + self.seen_ttl_s)]
        args += [TIMELINE_CAP, len(change.delivery_keys), len(PARTS), owner or ""]
        kept = turn.ttl_ms if keep and turn is not None and owner is not None else ""
        args += [handoffs, kept]
        args += change.delivery_keys
        args.append(len(change.fields))
        for name, value in change.fields.items():
            args += [name, value]
        args += [len(change.outbox), *change.outbox]
        for incident_id, incident in change.put.items():
            keys += self._keys(incident_id)
            resolved = "" if incident.resolved_at is None else repr(incident.resolved_at)
            args += [jsontext.dumps(header(incident)), repr(incident.created_at), resolved]
            new = incident.new_events()
            args += [len(new), *(jsontext.dumps(vars(event)) for event in new)]
            notes = incident.new_notes()
            args += [len(notes), *(jsontext.dumps(note) for note in notes)]
            deferred, due = change.deferred.get(incident_id, (set(), 0.0))
            args += [len(deferred), *sorted(deferred), repr(due) if deferred else ""]
            touched = changes(incident)
            for part in PARTS:
                written, deleted = touched.get(part, ({}, []))
                args.append(len(written))
                for name, value in written.items():
                    args += [name, value]
                args += [len(deleted), *deleted]
        for incident_id in change.delete:
            keys += self._keys(incident_id)
            args += ["", "", "", 0, 0, 0, ""] + [0, 0] * len(PARTS)
        if meanwhile is None:
            reply = self._commit(keys=keys, args=args)
        else:
            pipe = self.client.pipeline(transaction=False)
            self._commit(keys=keys, args=args, client=pipe)
            sending = submit(pipe)
            try:
                meanwhile()
            finally:
                replies = sending.result()  # answered before anything is raised
            reply = replies[0]
        if not reply:
            return False
        if turn is not None:
            turn.waiting = int(reply[1])
            turn.released = turn.waiting == 0
        return True

    @staticmethod
    def _keys(incident_id: str) -> list[str]:
        return [
            k.incident_key(incident_id),
            k.timeline_key(incident_id),
            k.notes_key(incident_id),
            k.deferred_update_key(incident_id),
            *(k.incident_part_key(incident_id, part) for part in PARTS),
        ]

    def ids_since(self, since: float, newest_first: bool = True) -> list[str]:
        if newest_first:
            return self.client.zrevrangebyscore(k.INCIDENTS_CREATED, "+inf", since)  # type: ignore[return-value]
        return self.client.zrangebyscore(k.INCIDENTS_CREATED, since, "+inf")  # type: ignore[return-value]

    def resolved_before(self, cutoff: float, limit: int = 500) -> list[str]:
        return self.client.zrangebyscore(  # type: ignore[return-value]
            k.INCIDENTS_RESOLVED, "-inf", f"({cutoff}", start=0, num=limit
        )

    @contextmanager
    def turn(
        self,
        wait_s: float | None = None,
        ttl_s: float = 5.0,
        lazy: bool = False,
        hand_off: str = "",
    ) -> Iterator[Turn]:
        """This process's turn to change the board, so that concurrent deliveries queue
        instead of each decoding and re-encoding the same incident only to lose the
        compare-and-set. Taken now, or with `lazy` by the first `board` read given it
        (in the same round trip). The wait for it lasts up to `wait_s`: past it, or if
        the holder died, the caller goes ahead anyway, and the compare-and-set keeps it
        correct. With `hand_off` (a lazy turn's encoded signals), a change that finds
        the turn held leaves them for the holder instead of waiting. A commit made with
        the turn gives it back; otherwise it is given back on the way out."""
        wait = TURN_WAIT_S if wait_s is None else wait_s
        turn = Turn(uuid.uuid4().hex, time.monotonic() + wait, int(ttl_s * 1000), hand_off)
        if not lazy:
            self._taking(turn, lambda pipe, taking: None)
        try:
            yield turn
        finally:
            if turn.owner is not None:
                self._release(keys=[k.INCIDENTS_TURN], args=[turn.owner])

    def unseen(self, delivery_keys: Sequence[str], now: float) -> bool:
        """Whether any of these alert states is new to the board (one round trip)."""
        if not delivery_keys:
            return False
        scores = self.client.zmscore(k.INCIDENTS_SEEN, list(delivery_keys))
        return any(score is None or score <= now for score in scores)
