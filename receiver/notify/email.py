"""Plain-text e-mail over SMTP to the recipients of the incident's tiers."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from typing import Any

from receiver.config import NotifySettings
from receiver.notify.channels import Rejected, RetryLater
from receiver.notify.message import TENANTS_LISTED, Message

EVENTS = {
    "opened",
    "priority_raised",
    "escalated",
    "tenant_isolated",
    "tenant_restored",
    "resolved",
    "watchdog_missing",
}


class Email:
    name = "email"
    per_s = 5.0

    def __init__(self, settings: NotifySettings) -> None:
        self.settings = settings

    def applies(self, message: Message) -> bool:
        return message.event in EVENTS

    def recipients(self, message: Message) -> list[str]:
        to = self.settings.email_to
        found = [*to.get("default", ())]
        for tier in sorted(message.tenant_tiers):
            found += to.get(tier, ())
        return list(dict.fromkeys(found))

    def render(self, message: Message) -> dict[str, Any]:
        lines = [
            message.summary,
            "",
            f"Incident:  {message.incident_id}",
            f"Priority:  {message.priority}",
            f"Status:    {message.status}",
            f"Scope:     {message.scope}",
            f"Cost:      INR {message.cost_per_hour:,.0f} per hour, "
            f"INR {message.accrued:,.0f} so far",
        ]
        if message.escalation_target:
            lines.append(
                f"Escalated: level {message.escalation_level}, {message.escalation_target}"
            )
        if message.details:
            lines.append(f"Changes:   {message.details}")
        listed = message.tenants[:TENANTS_LISTED]
        lines += ["", "Tenants:"]
        lines += [f"  {t.tenant_id} ({t.tier}): breaker {t.state}" for t in listed]
        if message.tenant_count > len(listed):
            lines.append(f"  ...and {message.tenant_count - len(listed)} more")
        lines += ["", *(f"{text}: {href}" for text, href in message.links.items())]
        subject = message.summary.replace("\r", " ").replace("\n", " ")[:200]
        return {"to": self.recipients(message), "subject": subject, "body": "\n".join(lines)}

    def destination(self, payload: dict[str, Any]) -> str:
        return f"smtp:{self.settings.smtp_host}"

    def send(self, payload: dict[str, Any]) -> str:
        if not payload["to"]:
            raise Rejected("no recipients")
        mail = EmailMessage()
        mail["From"] = self.settings.email_from
        mail["To"] = ", ".join(payload["to"])
        mail["Subject"] = payload["subject"]
        mail.set_content(payload["body"])
        s = self.settings
        try:
            with smtplib.SMTP(s.smtp_host or "", s.smtp_port, timeout=s.timeout_s) as smtp:
                if s.smtp_starttls:
                    smtp.starttls()
                if s.smtp_user:
                    smtp.login(s.smtp_user, s.smtp_password or "")
                refused = smtp.send_message(mail)
        except smtplib.SMTPResponseException as exc:
            if 400 <= exc.smtp_code < 500:
                raise RetryLater(f"SMTP {exc.smtp_code}") from None
            raise Rejected(f"SMTP {exc.smtp_code}") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise RetryLater(f"SMTP unavailable: {exc.__class__.__name__}") from None
        return f"accepted by {len(payload['to']) - len(refused)} recipients"
