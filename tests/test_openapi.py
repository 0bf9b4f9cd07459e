"""The OpenAPI document is complete, and a live receiver keeps to it under
schemathesis' generated requests: no 5xx, responses match the schema."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis
import requests
import schemathesis
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from receiver.api.openapi import build_spec
from tests.conftest import ADMIN_TOKEN, TOKENS_ENV, WEBHOOK_TOKEN
from tests.servers import Receiver, RedisServer

pytestmark = pytest.mark.redis
CONSOLE = "console."
"""The operator console's endpoints: HTML pages, not the JSON API."""


def test_every_route_is_documented(client: FlaskClient) -> None:
    """Each URL rule the app serves (but the document itself, /metrics, the console's
    pages and the gateways' /gate, answered by status code for any method) is in the spec."""
    documented = {
        (path.replace("{", "<").replace("}", ">"), method.upper())
        for path, ops in build_spec()["paths"].items()
        for method in ops
    }
    served = {
        (rule.rule, method)
        for rule in client.application.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
        if rule.endpoint not in ("static", "gate.gate")
        and not rule.endpoint.startswith(CONSOLE)
        and rule.rule not in ("/api/v1/openapi.json", "/metrics")
    }
    assert served == documented


def test_served_document(client: FlaskClient) -> None:
    """GET /api/v1/openapi.json is OpenAPI 3 with bearer auth schemes."""
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert set(spec["components"]["securitySchemes"]) == {"webhook", "read", "admin"}


@pytest.fixture(scope="module")
def live() -> Iterator[str]:
    server = RedisServer().start()
    receiver = Receiver({**TOKENS_ENV, "REDIS_URL": server.url}, workers=2).start()
    yield receiver.url
    receiver.stop()
    redis.Redis.from_url(server.url).flushall()
    server.stop()


def _schema(url: str) -> schemathesis.BaseSchema:
    spec = requests.get(f"{url}/api/v1/openapi.json", timeout=10).json()
    return schemathesis.openapi.from_dict(spec)


def exerciser(operation: schemathesis.APIOperation, live: str, token: str) -> Callable[[], None]:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=12, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def exercise(case: schemathesis.Case) -> None:
        case.call_and_validate(
            base_url=live,
            headers={"Authorization": f"Bearer {token}"},
            checks=[
                not_a_server_error,
                response_schema_conformance,
                content_type_conformance,
                status_code_conformance,
            ],
        )

    return exercise  # type: ignore[no-any-return]


def test_api_under_generated_requests(live: str) -> None:
    """No 5xx, no schema violation, for any generated input to any operation.

    Acceptance of generated "valid" input is not checked: the document cannot say
    everything the schemas enforce (label-name length, RFC 3339 times), so some
    generated bodies are rightly refused with a 422 envelope."""
    spec = requests.get(f"{live}/api/v1/openapi.json", timeout=10).json()
    failures = []
    for result in schemathesis.openapi.from_dict(spec).get_all_operations():
        operation = result.ok()
        token = WEBHOOK_TOKEN if operation.path == "/webhook/alertmanager" else ADMIN_TOKEN
        try:
            exerciser(operation, live, token)()
        except Exception as exc:  # collected so one run reports every operation
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)
