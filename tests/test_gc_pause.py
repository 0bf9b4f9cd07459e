"""The collector's pause: off while held, back as it was when the last pause ends."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from receiver.gc_pause import gc_paused


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    if enabled:
        gc.enable()
    else:
        gc.disable()


def test_the_collector_is_off_inside_and_back_on_after() -> None:
    """A pause turns the collector off, and its end turns it back on."""
    gc.enable()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_overlapping_pauses_resume_only_at_the_last_end() -> None:
    """An inner (or another thread's) pause ending does not resume the collector."""
    gc.enable()
    with gc_paused():
        with gc_paused():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_off_before_stays_off() -> None:
    """A pause does not turn on a collector someone else turned off."""
    gc.disable()
    with gc_paused():
        pass
    assert not gc.isenabled()


def test_an_error_inside_still_resumes() -> None:
    """A delivery that raises (a 4xx, Redis down) leaves the collector on."""
    gc.enable()
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()
