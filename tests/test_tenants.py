"""Tenant ids, tiers and the registry file."""

from __future__ import annotations

from pathlib import Path

import pytest

from receiver.tenants import (
    TIER_POLICIES,
    RegistryError,
    Tier,
    is_valid_tenant_id,
    load_registry,
    resolve_tier,
    tier_of,
)


@pytest.mark.parametrize("tenant_id", ["acme", "t1", "ACME-corp_2.eu", "a" * 64])
def test_valid_ids(tenant_id: str) -> None:
    """Ordinary ids pass."""
    assert is_valid_tenant_id(tenant_id)


@pytest.mark.parametrize(
    "tenant_id",
    ["", "a" * 65, "{acme}", "a:b", "a*", "a b", "a\nb", "ünï", "-lead", "_platform", 7],
)
def test_invalid_ids(tenant_id: object) -> None:
    """Anything that could break a key, a hash tag or a log line fails."""
    assert not is_valid_tenant_id(tenant_id)


def test_tier_resolution_order() -> None:
    """API override, then file, then alert label, then bronze."""
    assert resolve_tier("gold", Tier.SILVER, "platinum").source == "registry"
    assert resolve_tier(None, Tier.SILVER, "platinum").tier is Tier.SILVER
    assert resolve_tier(None, None, "Platinum").tier is Tier.PLATINUM
    assert resolve_tier(None, None, "diamond").tier is Tier.BRONZE


def test_seed_tier_table() -> None:
    """Availability and response SLAs per tier."""
    assert [(p.availability_sla_percent, p.response_sla_s) for p in TIER_POLICIES.values()] == [
        (99.99, 900),
        (99.9, 3600),
        (99.0, 14400),
        (None, 28800),
    ]


def test_registry_file(tmp_path: Path) -> None:
    """The YAML maps ids to tiers."""
    path = tmp_path / "t.yml"
    path.write_text("tenants:\n  acme: {tier: Gold}\n")
    assert load_registry(str(path)) == {"acme": Tier.GOLD}


@pytest.mark.parametrize(
    "text",
    ["tenants: [a]", "tenants:\n  acme: {tier: diamond}", "tenants:\n  'a:b': {tier: gold}", "{"],
)
def test_bad_registry_file(tmp_path: Path, text: str) -> None:
    """A malformed file stops start-up with a reason."""
    path = tmp_path / "t.yml"
    path.write_text(text)
    with pytest.raises(RegistryError, match="TENANTS_FILE"):
        load_registry(str(path))


def test_a_stored_tier_reads_back_as_the_tier_and_anything_else_is_refused() -> None:
    assert [tier_of(t.value) for t in Tier] == list(Tier)
    with pytest.raises(ValueError):
        tier_of("diamond")
