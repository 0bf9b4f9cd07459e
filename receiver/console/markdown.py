"""The little Markdown the postmortem draft uses, rendered to HTML after escaping
every character of it: headings, paragraphs, lists, tables, emphasis and code.
Anything else stays as text."""

from __future__ import annotations

import re

from markupsafe import Markup, escape

_CODE = re.compile(r"`([^`]+)`")
_STRONG = re.compile(r"\*\*(.+?)\*\*")
_EM = re.compile(r"(?<![\w*])[*_](?![\s*_])(.+?)(?<![\s*_])[*_](?![\w*])")
_ORDERED = re.compile(r"^\d+\.\s+")
_RULE = re.compile(r"^\|?\s*:?-{3,}")


def _inline(text: str) -> str:
    """`text` is escaped already; these patterns add tags around parts of it."""
    parts = _CODE.split(text)
    for i in range(0, len(parts), 2):
        parts[i] = _EM.sub(r"<em>\1</em>", _STRONG.sub(r"<strong>\1</strong>", parts[i]))
    for i in range(1, len(parts), 2):
        parts[i] = f"<code>{parts[i]}</code>"
    return "".join(parts)


def _cells(row: str) -> list[str]:
    return [cell.strip() for cell in row.strip().strip("|").split("|")]


def render(source: str) -> Markup:
    out: list[str] = []
    block: str | None = None

    def close() -> None:
        nonlocal block
        if block:
            out.append(f"</{block}>")
        block = None

    def open_(tag: str) -> None:
        nonlocal block
        if block != tag:
            close()
            out.append(f"<{tag}>")
            block = tag

    for raw in source.splitlines():
        line = str(escape(raw.rstrip()))
        if not line:
            close()
        elif heading := re.match(r"^(#{1,6})\s+(.*)$", line):
            close()
            level = len(heading.group(1))
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif line.startswith("- "):
            open_("ul")
            out.append(f"<li>{_inline(line[2:])}</li>")
        elif _ORDERED.match(line):
            open_("ol")
            out.append(f"<li>{_inline(_ORDERED.sub('', line))}</li>")
        elif line.startswith("|"):
            if _RULE.match(line):
                continue
            cell = "th" if block != "table" else "td"
            open_("table")
            row = "".join(f"<{cell}>{_inline(c)}</{cell}>" for c in _cells(line))
            out.append(f"<tr>{row}</tr>")
        else:
            open_("p")
            out.append(_inline(line))
    close()
    return Markup("\n".join(out))
