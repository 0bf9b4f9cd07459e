"""Slack incoming webhook with Block Kit, within Slack's limits, and escaped so an
alert's labels cannot mention @channel or smuggle in links."""

from __future__ import annotations

from typing import Any

import requests

from receiver.config import NotifySettings
from receiver.notify.channels import post_json
from receiver.notify.message import Message

SECTION_MAX = 3000
HEADER_MAX = 150
BLOCKS_MAX = 50
TENANTS_SHOWN = 20


def escape(text: str) -> str:
    """Slack's mrkdwn escaping: `&`, `<` and `>` are all control characters need."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Slack:
    name = "slack"

    def __init__(self, settings: NotifySettings) -> None:
        self.settings = settings
        self.per_s = settings.slack_per_s
        self.session = requests.Session()

    def applies(self, message: Message) -> bool:
        return True

    def render(self, message: Message) -> dict[str, Any]:
        shown = message.tenants[:TENANTS_SHOWN]
        lines = [f"• `{escape(t.tenant_id)}` {t.tier}, breaker {t.state}" for t in shown]
        if message.tenant_count > len(shown):
            lines.append(f"…and {message.tenant_count - len(shown)} more")
        facts = (
            f"*Priority* {message.priority}   *Status* {message.status}   "
            f"*Scope* {message.scope}\n*Cost* ₹{message.cost_per_hour:,.0f}/h, "
            f"₹{message.accrued:,.0f} so far"
        )
        if message.escalation_target:
            facts += f"\n*Escalated* to level {message.escalation_level}: " + escape(
                message.escalation_target
            )
        links = " | ".join(f"<{href}|{text}>" for text, href in message.links.items())
        blocks: list[dict[str, Any]] = [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": _clip(message.headline, HEADER_MAX)},
            },
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": _clip(
                        f"*{escape(message.incident_id)}* {escape(message.title)}\n" + facts,
                        SECTION_MAX,
                    ),
                },
            },
        ]
        if message.details:
            changes = _clip(f"*Since the last message* {escape(message.details)}", SECTION_MAX)
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": changes}})
        if lines:
            blocks.append(
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": _clip("\n".join(lines), SECTION_MAX)},
                }
            )
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": links}]})
        return {"text": _clip(escape(message.summary), SECTION_MAX), "blocks": blocks[:BLOCKS_MAX]}

    def destination(self, payload: dict[str, Any]) -> str:
        return "slack"

    def send(self, payload: dict[str, Any]) -> str:
        url = self.settings.slack_webhook_url or ""
        return post_json(self.session, url, payload, self.settings.timeout_s)
