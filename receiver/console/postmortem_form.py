"""The postmortem editor's form, to and from what `PUT .../postmortem` takes: root
cause, five whys, action items (title, owner, due) and lessons."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

WHYS = 5
NEW_ACTION_ROWS = 3


def editor_fields(postmortem: Mapping[str, Any]) -> dict[str, Any]:
    """What the form shows: the stored values, five why slots, spare action rows."""
    whys = list(postmortem.get("five_whys") or [])
    items = list(postmortem.get("action_items") or [])
    blank = {"title": "", "owner": "", "due": ""}
    return {
        "root_cause": postmortem.get("root_cause") or "",
        "five_whys": whys + [""] * (WHYS - len(whys)),
        "action_items": items + [blank] * NEW_ACTION_ROWS,
        "lessons": "\n".join(postmortem.get("lessons") or []),
    }


def postmortem_body(form: Mapping[str, str]) -> dict[str, Any]:
    """The form as the JSON body `PostmortemSchema` loads; empty rows are dropped."""
    whys = [form.get(f"why-{n}", "").strip() for n in range(WHYS)]
    while whys and not whys[-1]:
        whys.pop()
    items = []
    n = 0
    while f"item-{n}-title" in form:
        title = form.get(f"item-{n}-title", "").strip()
        if title:
            item = {"title": title, "owner": form.get(f"item-{n}-owner", "").strip()}
            due = form.get(f"item-{n}-due", "").strip()
            items.append({**item, "due": due or None})
        n += 1
    lessons = [line.strip() for line in form.get("lessons", "").splitlines() if line.strip()]
    return {
        "root_cause": form.get("root_cause", "").strip(),
        "five_whys": whys,
        "action_items": items,
        "lessons": lessons,
    }
