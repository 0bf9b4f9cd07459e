"""The one retry loop of every compare-and-set in the store's callers."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

MAX_ATTEMPTS = 25


class CommitConflict(RuntimeError):
    """A key kept changing under us; the caller should answer 5xx and be retried."""


def attempts(limit: int = MAX_ATTEMPTS) -> Iterator[int]:
    """Attempt numbers for a read-compute-commit loop, with a jittered back-off before
    each retry so racing writers stop colliding in lockstep. A caller that runs out
    raises `CommitConflict`."""
    for attempt in range(limit):
        if attempt:
            time.sleep(random.uniform(0, 0.001 * min(attempt, 10)))
        yield attempt
