"""A receiver that dies once between its two commits, for the crash tests: the first
delivery after `CRASH_FLAG_FILE` appears kills its worker with SIGKILL after the
breakers are committed and before the incident board is (the sweep's ticks pass).
gunicorn starts a new worker, and the test retries the delivery as Alertmanager
would."""

from __future__ import annotations

import os
import signal
from typing import Any

from flask import Flask

from receiver import create_app as real_create_app
from receiver import pipeline


def create_app() -> Flask:
    flag = os.environ["CRASH_FLAG_FILE"]
    update = pipeline.update

    def update_or_die(*args: Any, **kwargs: Any) -> Any:
        signals = args[4]
        if not signals.alerts:  # the sweep's tick, not a delivery
            return update(*args, **kwargs)
        try:
            os.remove(flag)
        except FileNotFoundError:
            return update(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("unreachable")

    pipeline.update = update_or_die  # type: ignore[assignment]
    return real_create_app()
