"""`quick_init`: a frozen dataclass built by the quick `__init__` is the same as one
built by the dataclass's own, for every kind of field."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import pytest

from receiver.quick_init import quick_init


def _sample() -> type:
    @dataclass(frozen=True)
    class Sample:
        name: str
        count: int = 3
        tags: frozenset[str] = frozenset()
        notes: list[str] = field(default_factory=list)
        seen: dict[str, int] = field(default_factory=dict, init=False, compare=False)
        label: str = field(init=False, default="none")
        upper: str = field(init=False, compare=False, repr=False)

        def __post_init__(self) -> None:
            object.__setattr__(self, "upper", self.name.upper())

    return Sample


REFERENCE = _sample()
QUICK = quick_init(_sample())


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("a",), {}),
        (("a", 5), {}),
        (("a", 5, frozenset({"x"}), ["n"]), {}),
        ((), {"name": "b", "notes": ["m"]}),
        (("c",), {"tags": frozenset({"y"}), "count": 0}),
    ],
)
def test_the_same_instance_as_the_dataclass_builds(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    reference, quick = REFERENCE(*args, **kwargs), QUICK(*args, **kwargs)
    assert vars(quick) == vars(reference)
    assert repr(quick).replace("QUICK", "") == repr(reference)
    assert QUICK(*args, **kwargs) == quick != REFERENCE(*args, **kwargs)
    assert quick.upper == quick.name.upper() and quick.label == "none"


def test_defaults_are_not_shared_and_fields_stay_frozen() -> None:
    first, second = QUICK("a"), QUICK("b")
    assert first.notes is not second.notes and first.seen is not second.seen
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.count = 4  # type: ignore[misc]
    moved = dataclasses.replace(first, count=9)
    assert (moved.count, moved.name, moved.upper) == (9, "a", "A")


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((), {}), (("a",), {"name": "b"}), (("a",), {"nope": 1}), (("a", 1, 2, 3, 4), {})],
)
def test_wrong_arguments_are_refused_as_by_the_dataclass(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    with pytest.raises(TypeError):
        REFERENCE(*args, **kwargs)
    with pytest.raises(TypeError):
        QUICK(*args, **kwargs)


def test_classes_it_cannot_serve_are_refused() -> None:
    @dataclass
    class Plain:
        x: int

    @dataclass(frozen=True, slots=True)
    class Slotted:
        x: int

    @dataclass(frozen=True, kw_only=True)
    class KeywordOnly:
        x: int

    for cls in (Plain, Slotted, KeywordOnly):
        with pytest.raises(TypeError):
            quick_init(cls)
