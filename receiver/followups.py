"""What follows every commit, whatever its input: each a listener of the pipeline.

- `Metrics` counts transitions (and a webhook's alerts) once, in the process that
  committed them;
- `Log` writes one line per transition and per incident notice, summed up past a
  cap, so a storm of ten thousand tenants is a few lines;
- `Drain` turns committed notices into notifications at once.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from receiver import metrics
from receiver.board import Notice
from receiver.breaker import TransitionEvent
from receiver.notify.dispatch import drain_quietly
from receiver.services import Services

if TYPE_CHECKING:
    from receiver.pipeline import Outcome

log = logging.getLogger(__name__)

LOGGED_TRANSITIONS = 50
"""Transitions logged one line each per batch; the rest are summed up in one line."""


class Listener(Protocol):
    def committed(self, outcome: Outcome) -> None:
        """Breakers are committed: `outcome.transitions` are this process's own."""

    def noticed(self, outcome: Outcome, services: Services, now: float) -> None:
        """The incident board is committed too: `outcome.notices` are in the outbox."""


class Metrics:
    def committed(self, outcome: Outcome) -> None:
        if outcome.ingest is not None and outcome.source == "webhook":
            metrics.observe_ingest(outcome.ingest)
        elif outcome.ingest is not None:
            metrics.observe_detections(outcome.ingest)
        else:
            metrics.observe_transitions(outcome.transitions)

    def noticed(self, outcome: Outcome, services: Services, now: float) -> None:
        return None


class Log:
    def committed(self, outcome: Outcome) -> None:
        log_transitions(outcome.transitions)

    def noticed(self, outcome: Outcome, services: Services, now: float) -> None:
        log_notices(outcome.notices)


class Drain:
    def committed(self, outcome: Outcome) -> None:
        return None

    def noticed(self, outcome: Outcome, services: Services, now: float) -> None:
        if outcome.queued:
            drain_quietly(services.hub, now)


LISTENERS: tuple[Listener, ...] = (Metrics(), Log(), Drain())


def log_transitions(events: Sequence[TransitionEvent]) -> None:
    """One line per transition, up to `LOGGED_TRANSITIONS`; the rest of a large
    batch (a shared failure reaching thousands of tenants) as one summary line. Every
    transition is kept in its tenant's transition log either way."""
    for event in events[:LOGGED_TRANSITIONS]:
        t = event.transition
        log.info(
            "tenant %s breaker %s -> %s%s (%s)",
            event.tenant_id,
            t.from_state.value,
            t.to_state.value,
            " suppressed" if t.suppressed else "",
            t.reason,
            extra={"tenant_id": event.tenant_id},
        )
    rest = events[LOGGED_TRANSITIONS:]
    if rest:
        moves = Counter((e.transition.from_state, e.transition.to_state) for e in rest)
        named = sorted((f"{a} -> {b}", count) for (a, b), count in moves.items())
        log.info(
            "%d more breaker transitions in this batch: %s",
            len(rest),
            ", ".join(f"{move} x{count}" for move, count in named),
        )


def log_notices(notices: Sequence[Notice]) -> None:
    """One line per incident, with counts, however many tenants joined."""
    by_incident: dict[str, Counter[str]] = {}
    for (incident_id, kind), n in Counter((n.incident_id, n.kind) for n in notices).items():
        by_incident.setdefault(incident_id, Counter())[kind] = n
    for incident_id, kinds in by_incident.items():
        summary = ", ".join(f"{kind} x{n}" if n > 1 else kind for kind, n in kinds.items())
        log.info("incident %s: %s", incident_id, summary, extra={"incident_id": incident_id})
