"""``results.html``: the whole report in one self-contained page.

Everything is inline (CSS, the sorting script, the plots as ``data:`` PNGs) and the page makes
no request, so it opens from a CI artifact, a mail or a file system alike. It shows the run's
fingerprint, the gates' verdict, the table (click a column's header to sort by it; again to
reverse), the notes under the table, the plots, the samples and, for criteria plans, the
criteria table.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pruning.metrics.samples import Samples

Table = tuple[Sequence[str], Sequence[Sequence[str]]]  # header, cells

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5rem; color: #1b1b1b; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { border: 1px solid #ccc; padding: .25rem .5rem; text-align: right; white-space: nowrap; }
th { background: #f0f0f0; cursor: pointer; user-select: none; position: sticky; top: 0; }
th.sorted-asc::after { content: " \\25B2"; } th.sorted-desc::after { content: " \\25BC"; }
td:first-child, th:first-child { text-align: left; }
td.text { text-align: left; white-space: normal; max-width: 60rem; }
tbody tr:nth-child(even) { background: #fafafa; }
.verdict { padding: .5rem .75rem; border-radius: 4px; display: inline-block; font-weight: 600; }
.pass { background: #e3f4e3; color: #14501a; } .fail { background: #fbe3e3; color: #7a1414; }
dl { display: grid; grid-template-columns: max-content auto; gap: .1rem 1rem; }
dt { font-weight: 600; } dd { margin: 0; }
img { max-width: 100%; border: 1px solid #ddd; margin: .5rem 0; }
.wide { overflow-x: auto; }
"""

# Sort a table by the clicked column: numbers (the first one in a cell, a leading minus sign
# or U+2212 included) before text; cells without a number sort last; a second click reverses.
SCRIPT = """
function cellKey(text) {
  const m = text.replace(/\\u2212/g, "-").match(/[-+]?\\d+(\\.\\d+)?(e[-+]?\\d+)?/i);
  return m ? parseFloat(m[0]) : null;
}
function sortBy(th) {
  const table = th.closest("table"), body = table.tBodies[0];
  const col = Array.from(th.parentNode.children).indexOf(th);
  const asc = !th.classList.contains("sorted-asc");
  table.querySelectorAll("th").forEach(h => h.classList.remove("sorted-asc", "sorted-desc"));
  th.classList.add(asc ? "sorted-asc" : "sorted-desc");
  const rows = Array.from(body.rows);
  rows.sort((a, b) => {
    const x = cellKey(a.cells[col].textContent), y = cellKey(b.cells[col].textContent);
    if (x === null && y === null) return a.cells[col].textContent.localeCompare(b.cells[col].textContent);
    if (x === null) return 1;
    if (y === null) return -1;
    return asc ? x - y : y - x;
  });
  rows.forEach(r => body.appendChild(r));
}
document.querySelectorAll("table.sortable th").forEach(th => th.addEventListener("click", () => sortBy(th)));
"""


@dataclass(frozen=True)
class Page:
    """What the page shows, already rendered to text by the report."""

    title: str
    facts: Sequence[tuple[str, str]]  # the fingerprint: (field, value)
    verdict: str
    failed: bool
    table: Table
    notes: Sequence[str]
    plots: Sequence[Path]  # PNG files, inlined
    samples: Samples | None = None
    criteria: Table | None = None


def render_html(page: Page) -> str:
    """The self-contained page."""
    parts = [
        f"<h1>{_esc(page.title)}</h1>",
        f'<p class="verdict {"fail" if page.failed else "pass"}">{_esc(page.verdict)}</p>',
        "<dl>" + "".join(f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>" for k, v in page.facts) + "</dl>",
        "<h2>Variants</h2>",
        f'<div class="wide">{_table(page.table, "results")}</div>',
        "<ul>" + "".join(f"<li>{_esc(n)}</li>" for n in page.notes) + "</ul>",
    ]
    if page.plots:
        parts.append("<h2>Plots</h2>")
        parts += [f'<div><img alt="{_esc(p.stem)}" src="{_png(p)}"></div>' for p in page.plots]
    if page.samples is not None:
        parts += _samples(page.samples)
    if page.criteria is not None:
        parts += [
            "<h2>Criteria against the truth</h2>",
            f'<div class="wide">{_table(page.criteria, "criteria")}</div>',
        ]
    body = "\n".join(parts)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<link rel="icon" href="data:,"><title>{_esc(page.title)}</title><style>{STYLE}</style></head>\n'
        f"<body>\n{body}\n<script>{SCRIPT}</script>\n</body></html>\n"
    )


def _table(table: Table, name: str) -> str:
    header, cells = table
    head = "".join(f'<th scope="col">{_esc(h)}</th>' for h in header)
    rows = "".join("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>\n" for row in cells)
    return (
        f'<table class="sortable" id="{name}"><thead><tr>{head}</tr></thead><tbody>\n{rows}</tbody></table>'
    )


def _samples(samples: Samples) -> list[str]:
    parts = [f"<h2>Samples (greedy, up to {samples.new_tokens} new tokens)</h2>"]
    for i, prompt in enumerate(samples.prompts):
        rows = "".join(
            f'<tr><td>{_esc(vid)}</td><td class="text">{_esc(texts[i]) or "(nothing)"}</td></tr>'
            for vid, texts in samples.texts.items()
        )
        parts.append(
            f"<h3>Prompt {i + 1}: <em>{_esc(prompt)}</em></h3>"
            f'<table id="samples-{i + 1}"><thead><tr><th>variant</th><th>continuation</th></tr></thead>'
            f"<tbody>{rows}</tbody></table>"
        )
    return parts


def _png(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _esc(text: str) -> str:
    return html.escape(text, quote=True)
