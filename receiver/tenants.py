"""Tenant tiers and the tenant registry.

A tenant's tier decides how loud its failure is. The tier comes from the registry
(the `TENANTS_FILE` plus changes made through the API), else from the alert's
`tier` label, else bronze.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any

import yaml

TENANT_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""Letters, digits, dot, underscore and dash, at most 64 characters. Nothing that
could break out of a Redis key or its `{tenant}` hash tag."""


class Tier(StrEnum):
    PLATINUM = "platinum"
    GOLD = "gold"
    SILVER = "silver"
    BRONZE = "bronze"


_BY_VALUE: Mapping[str, Tier] = {tier.value: tier for tier in Tier}


def tier_of(value: str) -> Tier:
    """`Tier(value)` for a stored value, at a dictionary lookup's cost: a storm's
    incident reads ten thousand."""
    tier = _BY_VALUE.get(value)
    return Tier(value) if tier is None else tier


@dataclass(frozen=True)
class TierPolicy:
    tier: Tier
    availability_sla_percent: float | None
    """None means best effort."""
    response_sla_s: int
    rank: int
    """0 is the most important tier."""


TIER_POLICIES: Mapping[Tier, TierPolicy] = {
    Tier.PLATINUM: TierPolicy(Tier.PLATINUM, 99.99, 15 * 60, 0),
    Tier.GOLD: TierPolicy(Tier.GOLD, 99.9, 60 * 60, 1),
    Tier.SILVER: TierPolicy(Tier.SILVER, 99.0, 4 * 3600, 2),
    Tier.BRONZE: TierPolicy(Tier.BRONZE, None, 8 * 3600, 3),
}
DEFAULT_TIER = Tier.BRONZE


class RegistryError(ValueError):
    """The tenants file is malformed; the message says where."""


def is_valid_tenant_id(tenant_id: object) -> bool:
    return isinstance(tenant_id, str) and TENANT_ID_PATTERN.fullmatch(tenant_id) is not None


def parse_tier(value: object) -> Tier | None:
    """The tier a label or field names, or None if it names none."""
    if not isinstance(value, str):
        return None
    try:
        return Tier(value.strip().lower())
    except ValueError:
        return None


@dataclass(frozen=True)
class ResolvedTier:
    tier: Tier
    source: str
    """Where the tier came from: `registry`, `file`, `alert` or `default`."""


@lru_cache(maxsize=1024)
def resolve_tier(override: str | None, from_file: Tier | None, label: str | None) -> ResolvedTier:
    """Where a tenant's tier comes from, first found: registry, file, alert, default.
    Cached: a storm resolves the same few combinations ten thousand times."""
    if (tier := parse_tier(override)) is not None:
        return ResolvedTier(tier, "registry")
    if from_file is not None:
        return ResolvedTier(from_file, "file")
    if (tier := parse_tier(label)) is not None:
        return ResolvedTier(tier, "alert")
    return ResolvedTier(DEFAULT_TIER, "default")


def load_registry(path: str | None) -> dict[str, Tier]:
    """Read `tenants: {<id>: {tier: gold}}` from YAML; an absent path is an empty registry."""
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            document: Any = yaml.safe_load(handle) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise RegistryError(f"TENANTS_FILE: cannot read {path!r}: {exc}") from None
    tenants = document.get("tenants") if isinstance(document, dict) else None
    if not isinstance(tenants, dict):
        raise RegistryError("TENANTS_FILE: expected a mapping under 'tenants'")
    registry: dict[str, Tier] = {}
    for tenant_id, entry in tenants.items():
        if not is_valid_tenant_id(tenant_id):
            raise RegistryError(f"TENANTS_FILE: invalid tenant id {tenant_id!r}")
        tier = parse_tier(entry.get("tier") if isinstance(entry, dict) else None)
        if tier is None:
            raise RegistryError(
                f"TENANTS_FILE: tenant {tenant_id!r} needs tier one of {[t.value for t in Tier]}"
            )
        registry[tenant_id] = tier
    return registry
