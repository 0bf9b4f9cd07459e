"""Redis: the client, the keys (see `keys`), and the atomic scripts that change them."""

from __future__ import annotations

from receiver.store.client import connect
from receiver.store.scope_wire import Change, DeliveryRead, Snapshot
from receiver.store.scopes import ScopeStore

__all__ = ["Change", "DeliveryRead", "ScopeStore", "Snapshot", "connect"]
