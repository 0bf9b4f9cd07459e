"""A background thread per process for what must happen with nobody asking:
record due breaker transitions, expire silent alerts, resolve quiet incidents,
drop incidents past retention, send what is left in the notification outbox,
and notice a silent Watchdog.

Reads are already right without it (breaker state is computed from stored
timestamps). A short Redis lock lets only one process sweep per interval."""

from __future__ import annotations

import logging
import os
import threading

import redis
import requests

from receiver.correlate import prune
from receiver.notify.dispatch import check_watchdog, drain
from receiver.pipeline import Tick, apply
from receiver.reconcile import ReconcileError, reconcile
from receiver.services import Services
from receiver.store.retry import CommitConflict

log = logging.getLogger(__name__)


def sweep_all(s: Services, now: float) -> None:
    s.store.add_known(s.registry, now)  # Redis may have lost the index since start-up
    apply(s, Tick(), now)
    prune(s.incidents, s.settings, now)
    drain(s.hub, now)
    check_watchdog(s.hub, now)


class Sweeper:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.interval_s = services.settings.sweep_interval_s
        self.owner = f"{os.getpid()}-{id(self)}"
        self._stop = threading.Event()
        self._reconcile_due_at = float("-inf")
        self._http = requests.Session()
        self._thread = threading.Thread(target=self._run, name="sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval_s + 1)
        self._http.close()

    def reconcile_once(self) -> bool:
        """Re-apply what Alertmanager holds, at start-up and once per interval across
        all receivers, so deliveries missed while we were down still converge."""
        s = self.services
        url, interval = s.settings.alertmanager_url, s.settings.reconcile_interval_s
        now = s.clock()
        if url is None or now < self._reconcile_due_at:
            return False
        self._reconcile_due_at = now + interval
        if not s.store.try_reconcile_lock(self.owner, interval * 0.9):
            return False
        reconcile(s, url, now, session=self._http)
        return True

    def run_once(self) -> bool:
        """One sweep, if no other process holds this interval's lock."""
        if not self.services.store.try_sweep_lock(self.owner, self.interval_s * 0.9):
            return False
        sweep_all(self.services, self.services.clock())
        return True

    def _run(self) -> None:
        while True:
            for step in (self.reconcile_once, self.run_once):
                try:
                    step()
                except (redis.RedisError, CommitConflict, ReconcileError) as exc:
                    log.warning("%s skipped: %s", step.__name__, exc)
                except Exception:
                    log.exception("%s failed", step.__name__)
            if self._stop.wait(self.interval_s):
                return
