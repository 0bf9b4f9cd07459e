"""Reading settings from the environment: the one place that parses each kind of
value, so every variable fails the same way, naming itself."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

T = TypeVar("T")

MIN_TOKEN_LENGTH = 16


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names the variable."""


def parse(env: Mapping[str, str], name: str, cast: Callable[[str], T], default: T) -> T:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return cast(raw.strip())
    except ValueError as exc:
        raise ConfigError(f"{name}: invalid value {raw!r} ({exc})") from None


def positive(cast: Callable[[str], T]) -> Callable[[str], T]:
    def checked(raw: str) -> T:
        value = cast(raw)
        if value <= 0:  # type: ignore[operator]
            raise ValueError("must be greater than 0")
        return value

    return checked


def non_negative(raw: str) -> float:
    value = float(raw)
    if value < 0:
        raise ValueError("must not be negative")
    return value


def percent(raw: str) -> float:
    value = float(raw)
    if not 0 <= value <= 100:
        raise ValueError("must be between 0 and 100")
    return value


def flag(raw: str) -> bool:
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def tiered(env: Mapping[str, str], name: str, cast: Callable[[str], T]) -> dict[str, T]:
    """`NAME` as `default`, `NAME_<TIER>` per tier."""
    values: dict[str, T] = {}
    for suffix in ("", "_PLATINUM", "_GOLD", "_SILVER", "_BRONZE"):
        key = suffix[1:].lower() or "default"
        value = parse(env, f"{name}{suffix}", cast, None)
        if value is not None:
            values[key] = value
    return values


def token(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(
            f"{name} is required (a random secret of at least {MIN_TOKEN_LENGTH} characters)"
        )
    if len(value) < MIN_TOKEN_LENGTH:
        raise ConfigError(f"{name} must be at least {MIN_TOKEN_LENGTH} characters long")
    return value


def optional_token(env: Mapping[str, str], name: str) -> str | None:
    if not (env.get(name) or "").strip():
        return None
    return token(env, name)
