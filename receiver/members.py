"""A mapping that holds only the entries a change needs.

An incident's tenants and alerts can run to thousands. A change (one tenant joining)
needs a handful of them, so the store loads those few, with the counts and tallies
that rank the incident, and the change writes back only the entries it touched. Any
other entry asked for is fetched on demand through `fetch`; walking the whole map
fetches it whole (correct, and counted in `full_fetches`, so a hot path that does
it shows). Pure: `fetch` is a plain callable the store provides.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping, Sequence
from typing import TypeVar

V = TypeVar("V")

Fetch = Callable[[Sequence[str] | None], dict[str, V]]
"""Entries by key (None: all of them); a key not stored is left out."""
Hook = Callable[[str, V | None, V | None], None]
"""Called with the key, the old value and the new (None: absent) on every change."""


def _no_fetch(keys: Sequence[str] | None) -> dict[str, V]:
    return {}


def by_key(key: str, value: object) -> object:
    """An `order` by key alone: the keys are sorted as they are, without a call each."""
    return key


class Members(MutableMapping[str, V]):
    full_fetches = 0
    """How many times any map was fetched whole (all instances; for tests and bench).
    A map read whole and decoded on use (`incident_doc.from_header`) counts once when
    first walked."""

    def __init__(
        self,
        entries: dict[str, V] | None = None,
        *,
        count: int | None = None,
        fetch: Fetch[V] | None = None,
        order: Callable[[str, V], object] | None = None,
    ) -> None:
        """`entries` with no `count` is the whole map; with `count`, a part of a map
        of that size whose other entries `fetch` reads."""
        self._known: dict[str, V] = dict(entries or {})
        self._absent: set[str] = set()
        self._complete = count is None
        self._count = len(self._known) if count is None else count
        self._fetch: Fetch[V] = fetch or _no_fetch
        self._order = order
        self.hooks: list[Hook[V]] = []
        self.written: dict[str, V] = {}
        self.deleted: set[str] = set()

    def prefetch(self, keys: Sequence[str] | set[str]) -> None:
        wanted = [k for k in keys if k not in self._known and k not in self._absent]
        if wanted and not self._complete:
            self.loaded(self._fetch(wanted), wanted)

    def loaded(self, entries: dict[str, V], asked: Sequence[str]) -> None:
        """Take entries read by the store for the keys `asked`."""
        for key in asked:
            if key in entries:
                self._known.setdefault(key, entries[key])
            elif key not in self._known:
                self._absent.add(key)

    def _whole(self) -> None:
        if not self._complete:
            Members.full_fetches += 1
            for key, value in self._fetch(None).items():
                self._known.setdefault(key, value)
            for key in self.deleted:
                self._known.pop(key, None)
            self._complete = True
            self._absent.clear()

    def _get(self, key: str) -> V | None:
        value = self._known.get(key)  # values are never None: None is absent
        if value is None and not self._complete and key not in self._absent:
            self.prefetch([key])
            value = self._known.get(key)
        return value

    def get(self, key: str, default: V | None = None) -> V | None:  # type: ignore[override]
        """`Mapping.get`, without the KeyError it raises and catches for every key
        that is absent (a storm's joins ask for thousands)."""
        value = self._get(key)
        return default if value is None else value

    def setdefault(self, key: str, default: V) -> V:
        value = self._get(key)
        if value is None:
            self[key] = value = default
        return value

    def __getitem__(self, key: str) -> V:
        value = self._get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        if key in self._known:  # the common case, without a call
            return True
        return isinstance(key, str) and self._get(key) is not None

    def __setitem__(self, key: str, value: V) -> None:
        known = self._known
        old = known.get(key)
        if old is None and not self._complete:
            old = self._get(key)
        known[key] = value
        if self._absent:
            self._absent.discard(key)
        if self.deleted:
            self.deleted.discard(key)
        self.written[key] = value
        if old is None:
            self._count += 1
        for hook in self.hooks:
            hook(key, old, value)

    def __delitem__(self, key: str) -> None:
        old = self._get(key)
        if old is None:
            raise KeyError(key)
        del self._known[key]
        self._absent.add(key)
        self.written.pop(key, None)
        self.deleted.add(key)
        self._count -= 1
        for hook in self.hooks:
            hook(key, old, None)

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[str]:
        self._whole()
        keys = list(self._known)
        if self._order is by_key:
            keys.sort()
        elif self._order is not None:
            order = self._order
            keys.sort(key=lambda k: order(k, self._known[k]))  # type: ignore[arg-type,return-value]
        return iter(keys)

    def __repr__(self) -> str:
        whole = "" if self._complete else f" of {self._count}"
        return f"Members({self._known!r}{whole})"

    def add(self, key: str, value: V) -> bool:
        """Set `key` only if absent; True if it was added."""
        if key in self:
            return False
        self[key] = value
        return True
