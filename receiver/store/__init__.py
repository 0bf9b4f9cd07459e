"""Redis: the client, the keys (see `keys`), and the atomic scripts that change them."""

from __future__ import annotations

from receiver.store.client import connect
from receiver.store.scopes import Change, DeliveryRead, ScopeStore, Snapshot

__all__ = ["Change", "DeliveryRead", "ScopeStore", "Snapshot", "connect"]
