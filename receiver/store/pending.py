"""Writes that ride on the next round trip instead of taking one of their own.

After a delivery's breaker commits, the guard's slots and the deny-list follow the
breakers. Those writes need nothing back, and the board read comes next, so they go
in its pipeline: a tenant's trip is one round trip fewer. Whoever made them flushes
what is still pending once the delivery is through, so none is ever dropped."""

from __future__ import annotations

from typing import Any

import redis

from receiver.store.overlap import Fill


class Pending:
    def __init__(self) -> None:
        self._fills: list[Fill] = []

    def add(self, fill: Fill) -> None:
        self._fills.append(fill)

    def __bool__(self) -> bool:
        return bool(self._fills)

    def into(self, pipe: Any) -> int:
        """Queue every pending write on `pipe`; how many commands that added. They
        stay pending until `sent` says the pipeline went through: a failed one
        leaves them for `flush` (every write here is idempotent)."""
        before = len(pipe)
        for fill in self._fills:
            fill(pipe)
        return len(pipe) - before

    def sent(self) -> None:
        self._fills = []

    def flush(self, client: redis.Redis) -> None:
        """Send what no pipeline carried, in a round trip of its own."""
        if not self._fills:
            return
        pipe = client.pipeline(transaction=False)
        if self.into(pipe):
            pipe.execute()
        self.sent()
