"""HTML pages of the tables for ``snakemake --report`` (workflow/rules/report.smk).

The report shows an HTML file inside the page but offers a CSV or Markdown file only as a
download, so every table gets a page: its Markdown file (the paper's layout, with the bold line of a
smoke-test preset) rendered, then every row of its CSV exactly as the CSV writes it.

    python -m revcurse.report tables --table TITLE CSV MARKDOWN|- OUT.html [--table ...]
"""
from __future__ import annotations

import html
import re
from pathlib import Path

import pandas as pd

STYLE = """<style>
body { font-family: sans-serif; font-size: 14px; margin: 1em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #bbb; padding: 2px 6px; text-align: right; white-space: nowrap; }
th { background: #eee; }
td:first-child, th:first-child { text-align: left; }
code { background: #f3f3f3; }
</style>"""


def _inline(text: str) -> str:
    """Escaped text with Markdown's **bold** and `code`."""
    text = html.escape(text, quote=False)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)


def _cells(row: str) -> list[str]:
    return [cell.strip() for cell in row.strip().strip("|").split("|")]


def _table(rows: list[str]) -> str:
    """A pipe table (header, separator, body) as HTML."""
    head, body = _cells(rows[0]), [_cells(r) for r in rows[2:]]
    lines = ["<table>", "<tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr>"]
    lines += ["<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in body]
    return "\n".join(lines + ["</table>"])


def markdown_html(text: str) -> str:
    """The Markdown the table writers produce as HTML: headings, paragraphs, bullet lists and pipe tables."""
    blocks, lines = [], text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
        elif line.lstrip().startswith("|"):
            start = i
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                i += 1
            blocks.append(_table(lines[start:i]))
        elif match := re.match(r"(#{1,6})\s+(.*)", line):
            level = min(len(match.group(1)) + 1, 6)      # the page's own title is <h1>
            blocks.append(f"<h{level}>{_inline(match.group(2))}</h{level}>")
            i += 1
        elif line.startswith("- "):
            items = []
            while i < len(lines) and lines[i].startswith("- "):
                items.append(f"<li>{_inline(lines[i][2:])}</li>")
                i += 1
            blocks.append("<ul>" + "".join(items) + "</ul>")
        else:
            start, i = i, i + 1
            while i < len(lines) and lines[i].strip() and not re.match(r"\s*\||#{1,6}\s|- ", lines[i]):
                i += 1
            blocks.append("<p>" + _inline(" ".join(lines[start:i])) + "</p>")
    return "\n".join(blocks)


def csv_html(path: Path) -> str:
    """Every row of a CSV, each cell as the file writes it."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if frame.empty:
        return f"<p>{html.escape(path.name)}: no rows.</p>"
    return frame.to_html(index=False, border=0)


def page(title: str, csv: Path, markdown: Path | None) -> str:
    parts = [f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>{STYLE}"
             f"</head><body>\n<h1>{html.escape(title)}</h1>"]
    if markdown is not None:
        parts.append(markdown_html(markdown.read_text()))
    parts.append(f"<h2>Every row of <code>{html.escape(csv.name)}</code></h2>\n{csv_html(csv)}")
    return "\n".join(parts) + "\n</body></html>\n"
