"""`Members`' own `get` and `setdefault`: what `Mapping`'s would do, fetching a key
the map does not hold yet, and through the hooks when setting."""

from __future__ import annotations

from collections.abc import Sequence

from receiver.members import Members, by_key


def partial(stored: dict[str, int], asked: list[Sequence[str] | None]) -> Members[int]:
    def fetch(keys: Sequence[str] | None) -> dict[str, int]:
        asked.append(keys)
        return dict(stored) if keys is None else {k: stored[k] for k in keys if k in stored}

    return Members({"a": 1}, count=len(stored), fetch=fetch)


def test_get_answers_held_fetched_and_absent_keys() -> None:
    """Held: no fetch; not held: fetched once; absent: the default, remembered."""
    asked: list[Sequence[str] | None] = []
    members = partial({"a": 1, "b": 2}, asked)
    assert members.get("a") == 1 and asked == []
    assert members.get("b") == 2 and asked == [["b"]]
    assert members.get("z") is None and members.get("z", 7) == 7
    assert asked == [["b"], ["z"]]


def test_setdefault_sets_only_an_absent_key_and_tells_the_hooks() -> None:
    """A key held (or stored) keeps its value; an absent one is set, written, hooked."""
    asked: list[Sequence[str] | None] = []
    members = partial({"a": 1, "b": 2}, asked)
    seen: list[tuple[str, int | None, int | None]] = []
    members.hooks.append(lambda key, old, new: seen.append((key, old, new)))
    assert members.setdefault("a", 9) == 1
    assert members.setdefault("b", 9) == 2
    assert members.setdefault("c", 3) == 3
    assert (members.written, seen, len(members)) == ({"c": 3}, [("c", None, 3)], 3)


def test_a_map_ordered_by_key_walks_its_keys_sorted_fetched_ones_too() -> None:
    stored = {"b": 2, "d": 4, "a": 1}
    members = Members({"c": 3}, count=4, fetch=lambda keys: stored, order=by_key)
    assert list(members) == ["a", "b", "c", "d"]
