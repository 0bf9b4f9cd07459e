"""How breakers are written to a scope's state hash."""

from __future__ import annotations

import pytest

from receiver import jsontext
from receiver.breaker import Breaker, State
from receiver.store.codec import BREAKER_FIELDS, breaker_from_fields, breaker_values


@pytest.mark.parametrize(
    "firing",
    [
        set(),
        {"a1b2c3d4e5f6a7b8"},
        {"é²"},
        {'quote"d'},
        {"back\\slash"},
        {"new\nline"},
        {"two", "names"},
    ],
)
def test_fingerprint_sets_are_written_as_json_and_read_back(firing: set[str]) -> None:
    breaker = Breaker(State.OPEN, opened_at=1.5, open_count=1, firing=frozenset(firing))
    values = dict(zip(BREAKER_FIELDS, breaker_values(breaker), strict=True))
    assert values["firing"] == jsontext.dumps(sorted(firing))
    assert breaker_from_fields(values) == breaker
