"""A blameless postmortem drafted from an incident: facts filled in, analysis
scaffolded, so the review starts from what happened rather than from a blank page."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from receiver.cost import impact
from receiver.figures import detection_latencies
from receiver.incidents import Incident


def when(at: float | None) -> str:
    if at is None:
        return "-"
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def span(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {secs} s"


def money(amount: float) -> str:
    return f"₹{amount:,.0f}"


def render(incident: Incident, now: float) -> str:
    cost = impact(incident, now)
    end = incident.resolved_at if incident.resolved_at is not None else now
    tiers = sorted({t.value for t in incident.tenants.values()})
    latencies = detection_latencies(incident)
    pm: dict[str, Any] = incident.postmortem
    lines = [
        f"# Postmortem: {incident.id} — {incident.title}",
        "",
        "*Blameless: this review is about systems and decisions, not people.*",
        "",
        "## Summary",
        "",
        f"- Priority: **{incident.priority.value}** ({incident.scope.value} scope)",
        f"- Status: {incident.status.value}"
        + (" (marked false positive)" if incident.false_positive else ""),
        f"- Started: {when(incident.created_at)}; resolved: {when(incident.resolved_at)}",
        f"- Duration: {span(end - incident.created_at)}",
        f"- Root cause: {pm.get('root_cause') or '_to be determined in review_'}",
        "",
        "## Impact",
        "",
        f"- Tenants affected: {len(incident.tenants)} "
        f"({', '.join(sorted(incident.tenants)) or 'none'})",
        f"- Tiers: {', '.join(tiers) or '-'}",
        f"- Isolation held back by the blast-radius guard: "
        f"{', '.join(incident.suppressed) or 'none'}",
        f"- Estimated cost: {money(cost.cost_per_hour)}/h, {money(cost.accrued)} accrued",
        f"- Had every known tenant been affected for as long: {money(cost.all_tenants_cost)}; "
        f"damage avoided by containment: **{money(cost.avoided)}**",
        f"- Alerts: {len(incident.alerts)}"
        + (
            " (Alertmanager truncated some: the list may be incomplete)" if incident.partial else ""
        ),
        "",
        "## Response",
        "",
        "| measure | value |",
        "|---|---|",
        f"| detection to isolation (per tenant) | "
        f"{'; '.join(f'{t}: {span(s)}' for t, s in latencies.items()) or '-'} |",
        f"| time to acknowledge | {span(_delta(incident.created_at, incident.acknowledged_at))} |",
        f"| time to resolve | {span(_delta(incident.created_at, incident.resolved_at))} |",
        f"| response SLA | {span(incident.response_sla_s)} (due {when(incident.sla_due_at)}) |",
        f"| escalation level reached | {incident.escalation_level} |",
        "",
        "## Timeline",
        "",
    ]
    for event in sorted(incident.timeline, key=lambda e: e.at):
        who = f" `{event.tenant_id}`" if event.tenant_id else ""
        lines.append(f"- {when(event.at)} — **{event.kind}**{who}: {event.message}")
    lines += ["", "## Five whys", ""]
    whys = pm.get("five_whys") or []
    for n in range(5):
        answer = whys[n] if n < len(whys) else "_…_"
        lines.append(f"{n + 1}. Why? {answer}")
    lines += ["", "## Action items", "", "| action | owner (team) | due |", "|---|---|---|"]
    items = pm.get("action_items") or []
    for item in items:
        lines.append(f"| {item['title']} | {item['owner']} | {item.get('due') or '-'} |")
    if not items:
        lines.append("| _add actions in review_ | _team_ | _date_ |")
    lines += ["", "## Lessons learned", ""]
    lessons = pm.get("lessons") or []
    lines += [f"- {lesson}" for lesson in lessons] or [
        "- What went well:",
        "- What went wrong:",
        "- Where we got lucky:",
    ]
    if incident.notes:
        lines += ["", "## Notes", ""]
        lines += [f"- {when(n['at'])} {n.get('author') or ''}: {n['text']}" for n in incident.notes]
    return "\n".join(lines) + "\n"


def _delta(start: float, end: float | None) -> float | None:
    return None if end is None else end - start
