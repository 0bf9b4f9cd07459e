"""The one interface every channel implements, and how an outcome is classified."""

from __future__ import annotations

from typing import Any, Protocol

import requests

from receiver.notify.message import Message


class RetryLater(Exception):
    """A transient failure: try again, after `after_s` if the destination said so."""

    def __init__(self, reason: str, after_s: float | None = None) -> None:
        super().__init__(reason)
        self.after_s = after_s


class Rejected(Exception):
    """The destination refused the message for good (a 4xx other than 429)."""


class Notifier(Protocol):
    name: str
    per_s: float
    """Calls per second the destination tolerates."""

    def applies(self, message: Message) -> bool:
        """Whether this channel carries this event at all."""

    def render(self, message: Message) -> dict[str, Any]:
        """The payload to store and later send; rendered when the event happens."""

    def destination(self, payload: dict[str, Any]) -> str:
        """A stable name for rate limiting (never a secret)."""

    def send(self, payload: dict[str, Any]) -> str:
        """Deliver; return a short receipt. Raise RetryLater or Rejected."""


def retry_after_s(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def post_json(session: requests.Session, url: str, body: Any, timeout_s: float) -> str:
    """POST and classify: 2xx ok; 429 and 5xx, timeouts, connection errors retry;
    any other 4xx is rejected for good."""
    try:
        response = session.post(url, json=body, timeout=timeout_s)
    except requests.Timeout:
        raise RetryLater("timed out") from None
    except requests.ConnectionError as exc:
        raise RetryLater(f"connection failed: {exc.__class__.__name__}") from None
    if response.status_code == 429:
        raise RetryLater("rate limited (429)", retry_after_s(response))
    if response.status_code >= 500:
        raise RetryLater(f"server error {response.status_code}", retry_after_s(response))
    if response.status_code >= 400:
        raise Rejected(f"rejected {response.status_code}: {response.text[:300]}")
    return f"{response.status_code}"
