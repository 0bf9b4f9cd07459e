"""Writes that ride on the next round trip instead of taking one of their own.

After a delivery's breaker commits, the guard's slots and the deny-list follow the
breakers. Those writes need nothing back, and the board read comes next, so they go
in its pipeline: a tenant's trip is one round trip fewer. Whoever made them flushes
what is still pending once the delivery is through, so none is ever dropped.

A large write (a storm's deny-list, one entry per tenant) goes from a sending thread
as soon as that round trip is answered instead: Redis applies it while the client
works on the board, where carried, or sent before, it would hold up the board read
for as long as Redis takes to run it."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import redis

from receiver.store.overlap import Fill, send_soon

EARLY_ENTRIES = 500
"""Entries from which a write is sent on its own rather than carried (about 3 ms of
Redis's time; a single tenant's trip stays one round trip fewer)."""


class Pending:
    def __init__(self) -> None:
        self._fills: list[Fill] = []
        self._large: list[tuple[redis.Redis, Fill]] = []
        self._sending: list[Future[list[Any]]] = []

    def add(self, fill: Fill, entries: int = 1, client: redis.Redis | None = None) -> None:
        """Leave `fill` for the next round trip; with `client`, one of `entries` past
        `EARLY_ENTRIES` is sent from a sending thread once that round trip is
        answered, and `flush` waits for it. Only a write the board does not read goes
        so: the board reads the guard's slots, so they are carried (they land before
        the board looks)."""
        if client is not None and entries >= EARLY_ENTRIES:
            self._large.append((client, fill))
        else:
            self._fills.append(fill)

    def __bool__(self) -> bool:
        return bool(self._fills or self._large or self._sending)

    def into(self, pipe: Any) -> int:
        """Queue every pending write to carry on `pipe`; how many commands that added.
        They stay pending until `sent` says the pipeline went through: a failed one
        leaves them for `flush` (every write here is idempotent)."""
        before = len(pipe)
        for fill in self._fills:
            fill(pipe)
        return len(pipe) - before

    def sent(self) -> None:
        """The carrying pipeline went through: the large writes go now, from a sending
        thread, while the caller works on what it read."""
        self._fills = []
        large, self._large = self._large, []
        self._sending += [send_soon(client, fill) for client, fill in large]

    def flush(self, client: redis.Redis) -> None:
        """Send what no pipeline carried, in a round trip of its own, and wait for
        what went from a sending thread; the first error of either is raised once
        both are done."""
        large, self._large = self._large, []
        sending = self._sending + [send_soon(owner, fill) for owner, fill in large]
        self._sending = []
        error: BaseException | None = None
        if self._fills:
            pipe = client.pipeline(transaction=False)
            try:
                if self.into(pipe):
                    pipe.execute()
                self._fills = []
            except BaseException as exc:  # the large writes are still answered first
                error = exc
        for future in sending:
            if (failed := future.exception()) is not None and error is None:
                error = failed
        if error is not None:
            raise error
