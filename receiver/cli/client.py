"""The receiver's HTTP API as the CLI uses it, and tables for the terminal."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import requests

DEFAULT_URL = "http://127.0.0.1:8080"
TOKEN_NAMES = ("RECEIVER_WEBHOOK_TOKEN", "RECEIVER_API_TOKEN", "RECEIVER_ADMIN_TOKEN")


def tokens() -> dict[str, str]:
    """The receiver's tokens from the environment, else from ./.dev-tokens
    (written by scripts/serve.sh)."""
    found = {name: os.environ.get(name, "") for name in TOKEN_NAMES}
    dev = Path(".dev-tokens")
    if not all(found.values()) and dev.is_file():
        for line in dev.read_text().splitlines():
            name, _, value = line.partition("=")
            if name in found and not found[name]:
                found[name] = value.strip()
    missing = [name for name, value in found.items() if not value]
    if missing:
        raise click.ClickException(f"set {', '.join(missing)} (the receiver's tokens)")
    return found


class Api:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.tokens = tokens()
        self.session = requests.Session()

    def _call(self, method: str, path: str, token: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[token]}"}
        try:
            response = self.session.request(
                method, f"{self.url}{path}", headers=headers, timeout=30, **kwargs
            )
        except requests.RequestException as exc:
            raise click.ClickException(f"cannot reach the receiver at {self.url}: {exc}") from None
        if response.status_code >= 400:
            try:
                message = response.json().get("message", response.text)
            except ValueError:
                message = response.text
            raise click.ClickException(f"{method} {path}: {response.status_code} {message}")
        return response.json() if response.content else None

    def get(self, path: str) -> Any:
        return self._call("GET", path, "RECEIVER_API_TOKEN")

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        return self._call(method, path, "RECEIVER_ADMIN_TOKEN", json=body)

    def webhook(self, body: Any) -> Any:
        return self._call("POST", "/webhook/alertmanager", "RECEIVER_WEBHOOK_TOKEN", json=body)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(c) for c in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)
    ]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    rule = "  ".join("-" * w for w in widths)
    body = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join([line, rule, *body])


def money(amount: float) -> str:
    return f"₹{amount:,.0f}"
