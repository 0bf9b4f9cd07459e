"""A background thread per process that records due time-based transitions.

Reads are already right without it (state is computed from stored timestamps);
the sweep makes the transitions happen and be logged when nobody is reading.
A short Redis lock lets only one process sweep per interval."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

import redis

from receiver.config import BreakerSettings
from receiver.ingest import CommitConflict, sweep
from receiver.store import Store

log = logging.getLogger(__name__)


class Sweeper:
    def __init__(
        self,
        store: Store,
        settings: BreakerSettings,
        clock: Callable[[], float],
        interval_s: float,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.interval_s = interval_s
        self.owner = f"{os.getpid()}-{id(self)}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="breaker-sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval_s + 1)

    def run_once(self) -> int:
        if not self.store.try_sweep_lock(self.owner, self.interval_s * 0.9):
            return 0
        return len(sweep(self.store, self.settings, self.clock()))

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.run_once()
            except (redis.RedisError, CommitConflict) as exc:
                log.warning("breaker sweep skipped: %s", exc.__class__.__name__)
            except Exception:
                log.exception("breaker sweep failed")
