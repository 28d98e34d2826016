"""The README's table: the default run's quality columns, from a report's ``results.json``.

    python scripts/readme_table.py docs/results/smollm2-sequential

The README shows the quality of every single-block removal; the full table, with the speed
columns, is the report's ``results.md``. ``tests/test_docs.py`` holds the README's table equal
to what this prints for the published report, so the README cannot show other numbers.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HEADER = (
    "| block removed | perplexity (95% CI) | change | KL (nats) | top-1 agree |",
    "|---|---|---|---|---|",
)


def row_line(row: dict[str, Any]) -> str:
    """One variant's quality as a table line."""
    removed = ", ".join(str(i) for i in row["removed"]) or "none"
    low, high = row["ppl_ci95"]
    change = "reference" if not row["removed"] else f"{row['ppl_change_pct']:+.1f}%"
    cells = [removed, f"{row['ppl']:.3f} ({low:.2f}–{high:.2f})", change, f"{row['kl']:.4f}"]
    return "| " + " | ".join([*cells, f"{row['top1_agree']:.3f}"]) + " |"


def readme_table(report: Path) -> str:
    """The table for the report in ``report`` (its ``results.json``), in Markdown."""
    rows = json.loads((report / "results.json").read_text(encoding="utf-8"))["rows"]
    return "\n".join([*HEADER, *(row_line(r) for r in rows)]) + "\n"


if __name__ == "__main__":
    print(readme_table(Path(sys.argv[1])), end="")
