from __future__ import annotations

import pytest

from receiver.console.markdown import render


@pytest.mark.parametrize(
    ("source", "html"),
    [
        ("# Title", "<h1>Title</h1>"),
        ("- one\n- **two**", "<ul>\n<li>one</li>\n<li><strong>two</strong></li>\n</ul>"),
        ("1. Why? _…_", "<ol>\n<li>Why? <em>…</em></li>\n</ol>"),
        (
            "| a | b |\n|---|---|\n| 1 | 2 |",
            "<table>\n<tr><th>a</th><th>b</th></tr>\n<tr><td>1</td><td>2</td></tr>\n</table>",
        ),
        ("`tenant_a` and tenant_b", "<p>\n<code>tenant_a</code> and tenant_b\n</p>"),
    ],
)
def test_the_postmortem_markdown_becomes_its_few_tags(source: str, html: str) -> None:
    """Headings, lists, tables, emphasis and code; underscores inside names stay."""
    assert str(render(source)) == html


@pytest.mark.parametrize(
    "source",
    ["<script>alert(1)</script>", "- <img src=x onerror=alert(1)>", "**<b>x</b>**", "`<i>`"],
)
def test_html_in_the_source_is_text(source: str) -> None:
    """Every character is escaped before any tag is added: no tag of the source survives."""
    out = str(render(source))
    assert "<script" not in out and "<img" not in out and "<b>" not in out and "<i>" not in out
    assert "&lt;" in out
