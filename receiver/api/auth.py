"""Bearer tokens, compared in constant time. Three roles: Alertmanager's webhook,
readers of the API, and admins (who can also read)."""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable
from enum import StrEnum
from typing import ParamSpec, TypeVar

from flask import request

from receiver.api.deps import get_services
from receiver.api.errors import ApiError

P = ParamSpec("P")
R = TypeVar("R")


class Role(StrEnum):
    WEBHOOK = "webhook"
    READ = "read"
    ADMIN = "admin"
    METRICS = "metrics"
    """`GET /metrics`: open unless `METRICS_TOKEN` is set."""


def _bearer() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _matches(token: str, expected: str) -> bool:
    return hmac.compare_digest(token.encode("utf-8"), expected.encode("utf-8"))


def allowed(token: str, role: Role) -> bool:
    settings = get_services().settings
    if role is Role.WEBHOOK:
        return _matches(token, settings.webhook_token)
    if role is Role.METRICS:
        return settings.metrics_token is None or _matches(token, settings.metrics_token)
    admin = _matches(token, settings.admin_token)
    if role is Role.ADMIN:
        return admin
    reader = _matches(token, settings.api_token)
    return admin or reader


def require(
    role: Role, token_header: str | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """The view needs a token of `role`: a bearer token, or the `token_header` if given
    (for gateways that cannot add an Authorization header to the check alone)."""

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            token = _bearer() or (
                request.headers.get(token_header, "").strip() if token_header else ""
            )
            if role is Role.METRICS and get_services().settings.metrics_token is None:
                return view(*args, **kwargs)
            if not token or not allowed(token, role):
                raise ApiError(
                    401,
                    "missing or invalid bearer token",
                    headers={"WWW-Authenticate": 'Bearer realm="blast-radius"'},
                )
            return view(*args, **kwargs)

        return wrapper

    return decorate
