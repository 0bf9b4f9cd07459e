"""The shipped Traefik and Envoy configs keep to what /gate expects (no Traefik or
Envoy binary here: tests/test_gateway_nginx.py runs the nginx one for real)."""

from __future__ import annotations

from typing import Any

import yaml

from receiver.api.gate import TOKEN_HEADER
from receiver.config import GateSettings
from tests.servers import ROOT


def load(path: str) -> Any:
    return yaml.safe_load((ROOT / "deploy" / path).read_text())


def test_traefik_sends_the_tenant_and_token_to_gate_and_strips_the_token() -> None:
    """ForwardAuth asks /gate with the tenant header and the token, which is removed after."""
    middlewares = load("traefik/blast-radius.yml")["http"]["middlewares"]
    auth = middlewares["blast-radius-gate"]["forwardAuth"]
    assert auth["address"].endswith("/gate")
    assert {GateSettings().tenant_header, TOKEN_HEADER} <= set(auth["authRequestHeaders"])
    assert middlewares["blast-radius-strip"]["headers"]["customRequestHeaders"] == {
        TOKEN_HEADER: ""
    }
    chain = middlewares["blast-radius"]["chain"]["middlewares"]
    assert chain == ["blast-radius-token", "blast-radius-gate", "blast-radius-strip"]


def test_envoy_asks_gate_with_the_tenant_header_and_fails_open() -> None:
    """ext_authz: /gate prefix, the tenant header allowed, the token added, fail open."""
    listener = load("envoy/blast-radius.yaml")["static_resources"]["listeners"][0]
    manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
    authz = manager["http_filters"][0]["typed_config"]
    service = authz["http_service"]
    assert (service["path_prefix"], authz["failure_mode_allow"]) == ("/gate", True)
    allowed = [p["exact"] for p in service["authorization_request"]["allowed_headers"]["patterns"]]
    assert GateSettings().tenant_header.lower() in allowed
    added = service["authorization_request"]["headers_to_add"]
    assert [h["key"] for h in added] == ["Authorization"]
    assert added[0]["value"].startswith("Bearer ")
