"""The report page: one self-contained HTML file (inline CSS, no JS, no external URLs).

Figures are embedded as ``data:image/png;base64`` URIs, so ``index.html`` alone
can be mailed or opened anywhere; the same PNGs are also written beside it, for
slides. Every piece of user text is escaped.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from .answer import TextTable

CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 980px;
       color: #222; background: #fff; line-height: 1.45; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.8em; }
.meta { color: #666; font-size: 0.9em; }
table.summary { border-collapse: collapse; margin: 0.5em 0; }
table.summary th, table.summary td { text-align: left; padding: 0.25em 0.9em 0.25em 0; vertical-align: top; }
table.summary th { color: #555; font-weight: 600; white-space: nowrap; }
table.summary td { overflow-wrap: anywhere; }
.answer { background: #f3f7fb; border: 1px solid #c8d8e8; border-radius: 4px; padding: 0.2em 1em 0.6em 1em; }
.answer h2 { margin-top: 0.6em; }
.scroll { overflow-x: auto; max-width: 100%; }
table.data { border-collapse: collapse; margin: 0.4em 0 0.2em 0; font-size: 0.95em; }
table.data caption { text-align: left; font-weight: 600; padding-bottom: 0.2em; }
table.data th, table.data td { padding: 0.2em 0.7em; border-bottom: 1px solid #dde; text-align: left; vertical-align: top; }
table.data th { background: #e8eef5; font-weight: 600; }
table.data td.num, table.data th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.data td.txt { min-width: 14em; }
p.tablenote { color: #555; font-size: 0.88em; margin-top: 0.1em; }
figure { margin: 1.2em 0 2em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #444; font-size: 0.92em; margin-top: 0.3em; }
ul.absent li { color: #666; }
.flag { color: #b22222; font-weight: 600; }
code { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.92em; background: #eef; padding: 0 0.2em; }
.notice { color: #5a4a00; background: #fff8dc; padding: 0.3em 0.6em; }
@media (max-width: 640px) {
  body { margin: 1em auto; padding: 0 0.6em; }
  table.summary th, table.summary td { display: block; padding: 0; }
  table.summary td { margin-bottom: 0.5em; }
  table.data { font-size: 0.85em; }
  .answer { padding: 0.1em 0.5em 0.4em 0.5em; }
  table.data th, table.data td { padding: 0.2em 0.35em; }
  figure .wide img { max-width: none; width: 640px; }
}
.note { background: #f6f6f0; border-left: 3px solid #c9b458; padding: 0.4em 0.8em; }
"""


@dataclass
class FigureEntry:
    """One figure on the page: its PNG (written beside the page, embedded in it), a heading and a how-to-read caption."""

    file: str
    title: str
    caption: str
    png: bytes = b""

    @property
    def width(self) -> int:
        """The PNG's width in pixels (its IHDR chunk), 0 when the bytes are not a PNG."""
        if self.png[:8] != b"\x89PNG\r\n\x1a\n" or len(self.png) < 24:
            return 0
        return int.from_bytes(self.png[16:20], "big")

    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


def text(s: str) -> str:
    """Plain text as HTML: escaped, with `backticked` spans (commands, option names) set as code."""
    return re.sub(r"`([^`<>]+)`", r"<code>\1</code>", html.escape(s))


WIDE_PX = 700  # a figure wider than this keeps its size on a phone, in a box that scrolls sideways, so its text stays legible


def table_html(t: TextTable) -> list[str]:
    """A :class:`TextTable` as an HTML table in a box that scrolls sideways on a narrow screen (the page itself does not)."""
    esc = html.escape

    def cell(tag: str, k: int, value: str) -> str:
        cls = ' class="num"' if k in t.right else ' class="txt"' if k > 0 else ""  # txt: prose, kept readable when narrow
        return f"<{tag}{cls}>{esc(value)}</{tag}>"

    out = ['<div class="scroll">', f'<table class="data"><caption>{esc(t.title)}</caption>',
           "<thead><tr>" + "".join(cell("th", k, h) for k, h in enumerate(t.header)) + "</tr></thead><tbody>"]
    out += ["<tr>" + "".join(cell("td", k, v) for k, v in enumerate(row)) + "</tr>" for row in t.rows]
    out.append("</tbody></table></div>")
    if t.note:
        out.append(f'<p class="tablenote">{text(t.note)}</p>')
    return out


def render_page(title: str, summary: list[tuple[str, str]], reasons: list[str], figures: list[FigureEntry],
                absent: list[str], *, flags: list[str] | None = None, notes: list[tuple[str, list[str]]] | None = None,
                answer: list[str | TextTable] | None = None, notices: list[str] | None = None,
                version: str = "") -> str:
    """The whole page as a string; summary values and captions are plain text (escaped here).

    ``answer`` (sentences and tables, in reading order) opens the page: the plan and its verification. ``flags`` are warnings (red);
    ``notices`` are things worth knowing that are not warnings."""
    esc = html.escape
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title>",
        f"<style>{CSS}</style>",
        "</head><body>",
        f"<h1>{esc(title)}</h1>",
        f'<p class="meta">generated by mixopt{" " + esc(version) if version else ""} on {esc(when)}</p>',
    ]
    flag_lines = [f'<p class="flag">{esc(flag)}</p>' for flag in flags or []]  # inside the answer's box when there is one
    if answer:
        parts += ['<section class="answer" id="plan">', "<h2>The plan</h2>"]
        for block in answer:
            parts += table_html(block) if isinstance(block, TextTable) else [f"<p>{text(block)}</p>"]
        parts += [*flag_lines, "</section>"]
    else:
        parts += flag_lines
    parts += [f'<p class="notice">{esc(n)}</p>' for n in notices or []]
    parts += ["<h2>Summary</h2>", '<table class="summary">']
    parts += [f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in summary]
    parts.append("</table>")
    for heading, lines in notes or []:
        parts.append(f"<h2>{esc(heading)}</h2>")
        parts += [f'<p class="note">{text(line)}</p>' if k == 0 else f"<p>{text(line)}</p>" for k, line in enumerate(lines)]
    if reasons:
        parts.append("<h2>Why this plan</h2><ul>")
        parts += [f"<li>{text(r)}</li>" for r in reasons]
        parts.append("</ul>")
    if figures:
        parts.append("<h2>Figures</h2>")
    for fig in figures:
        parts += [
            "<figure>",
            '<div class="scroll wide">' if fig.width > WIDE_PX else '<div class="scroll">',
            f'<img src="{fig.data_uri()}" alt="{esc(fig.title, quote=True)}" data-file="{esc(fig.file, quote=True)}">',
            "</div>",
            f"<figcaption><strong>{esc(fig.title)}.</strong> {text(fig.caption)}</figcaption>",
            "</figure>",
        ]
    if absent:
        parts.append('<h2>Not shown</h2><ul class="absent">')
        parts += [f"<li>{text(a)}</li>" for a in absent]
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p) + "\n"
