"""The incidents a failure story leaves are the same as when each incident was one
document (tests/data/incident-story.json, captured then): same tenants, priority,
cost, alerts and timeline. On fakeredis and real Redis."""

from __future__ import annotations

import json

import redis

from receiver.config import Settings
from tests.conftest import DATA
from tests.incident_story import play


def test_a_story_leaves_the_incidents_it_left_before(
    redis_client: redis.Redis, settings: Settings
) -> None:
    """Every incident of the story matches its capture, field for field."""
    before = json.loads((DATA / "incident-story.json").read_text())
    now = play(redis_client, settings.notify_redis_url)
    assert [i["id"] for i in now] == [i["id"] for i in before]
    assert len(before) == 2 and len(before[-1]["tenants"]) == 32
    for old, new in zip(before, now, strict=True):
        assert new == old
