"""One pipeline for every input: each kind reaches the breakers, the board and every
listener, in that order. On fakeredis and real Redis."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import redis

from receiver.alerts import Notification
from receiver.board import Notice
from receiver.breaker import Action, State
from receiver.config import Settings
from receiver.pipeline import OVERLAP_ALERTS, Alerts, Input, OperatorAction, Outcome, Tick, apply
from receiver.schemas import NotificationSchema
from receiver.services import Services, build_services
from tests.conftest import T0, isolate_alert

SETTINGS = Settings("w" * 16, "a" * 16, "d" * 16, max_isolated_percent=100)
FIRING = NotificationSchema().load(isolate_alert("acme"))


class Recorder:
    """A listener that keeps what it heard, and when."""

    def __init__(self) -> None:
        self.heard: list[tuple[str, Any]] = []

    def committed(self, outcome: Outcome) -> None:
        self.heard.append(("committed", [e.transition.to_state for e in outcome.transitions]))

    def noticed(self, outcome: Outcome, services: Services, now: float) -> None:
        self.heard.append(("noticed", sorted({n.kind for n in outcome.notices})))


@pytest.fixture
def services(redis_client: redis.Redis, settings: Settings) -> Services:
    queued = replace(SETTINGS, notify_redis_url=settings.notify_redis_url)
    return build_services(queued, client=redis_client, registry={})


@pytest.mark.parametrize(
    ("item", "at", "to", "kinds"),
    [
        (Alerts(FIRING), 0, [State.OPEN], ["opened", "tenant_isolated", "tenant_joined"]),
        (OperatorAction("acme", Action.FORCE_OPEN, "maintenance"), 0, [State.FORCED_OPEN], []),
        (Tick(), 61, [State.HALF_OPEN], []),
    ],
    ids=["alerts", "operator", "tick"],
)
def test_every_input_commits_then_correlates_then_tells_the_listeners(
    services: Services, item: Input, at: float, to: list[State], kinds: list[str]
) -> None:
    """Listeners hear the committed transitions first, the board's notices second."""
    if isinstance(item, Tick):
        apply(services, Alerts(FIRING), T0, [])
    recorder = Recorder()
    outcome = apply(services, item, T0 + at, [recorder])
    assert recorder.heard == [("committed", to), ("noticed", kinds)]
    assert [e.transition.to_state for e in outcome.transitions] == to
    assert all(isinstance(n, Notice) for n in outcome.notices)


def test_reconciled_alerts_are_a_delivery_from_another_source(services: Services) -> None:
    """The same pipeline; the outcome says where the alerts came from."""
    outcome = apply(services, Alerts(FIRING, "reconcile"), T0, [])
    assert outcome.source == "reconcile" and outcome.ingest is not None
    again = apply(services, Alerts(FIRING), T0 + 1, [])
    assert (again.transitions, again.notices) == ([], [])


def _crowd(count: int) -> Notification:
    body = isolate_alert("c0")
    template = body["alerts"][0]
    body["alerts"] = [
        {**template, "labels": {**template["labels"], "tenant_id": f"c{i}"}, "fingerprint": f"f{i}"}
        for i in range(count)
    ]
    return NotificationSchema().load(body)


class Heard(Recorder):
    """A recorder that also hears the board's commit being sent, and may fail."""

    def __init__(self, services: Services, fail: bool = False) -> None:
        super().__init__()
        self.fail = fail
        commit = services.incidents.commit

        def committing(*args: Any, **kwargs: Any) -> bool:
            self.heard.append(("board", kwargs.get("meanwhile") is not None))
            return commit(*args, **kwargs)

        services.incidents.commit = committing  # type: ignore[method-assign]

    def committed(self, outcome: Outcome) -> None:
        self.heard.append(("committed", len(outcome.transitions)))
        if self.fail:
            raise RuntimeError("listener failed")


@pytest.mark.parametrize("count", [1, OVERLAP_ALERTS])
def test_a_large_deliverys_listeners_hear_its_breakers_while_its_board_commits(
    services: Services, count: int
) -> None:
    """A small delivery tells the listeners before its board change; from
    `OVERLAP_ALERTS` alerts they hear it while Redis applies that change, once."""
    heard = Heard(services)
    apply(services, Alerts(_crowd(count)), T0, [heard])
    if count == 1:
        assert heard.heard[:2] == [("committed", 1), ("board", False)]
    else:
        assert heard.heard[:2] == [("board", True), ("committed", count)]
    assert [kind for kind, _ in heard.heard[2:]] == ["noticed"]
    assert "tenant_joined" in heard.heard[2][1]


def test_a_listener_failing_while_the_board_commits_fails_after_the_board_is_in(
    services: Services,
) -> None:
    heard = Heard(services, fail=True)
    with pytest.raises(RuntimeError, match="listener failed"):
        apply(services, Alerts(_crowd(OVERLAP_ALERTS)), T0, [heard])
    assert heard.heard == [("board", True), ("committed", OVERLAP_ALERTS)]
    board = services.incidents.board(T0)
    assert [len(i.tenants) for i in board.incidents.values()] == [OVERLAP_ALERTS]
