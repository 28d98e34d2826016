"""The README's table: the default run's quality columns, from a report's ``results.json``, and
under it the run's fingerprint line (with its window design; its hashes and commit stay in the
report's page, the README names none).

    python scripts/readme_table.py docs/results/smollm2-sequential

The README shows the quality of every single-block removal; the full table, with the speed
columns, is the report's ``results.md``. ``tests/test_docs.py`` holds the README's table and
fingerprint equal to what this prints for the published report, so the README cannot show other
numbers.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pruning.metrics.fingerprint import RunFingerprint

HEADER = (
    "| block removed | perplexity (95% CI) | change (paired 95% CI) | KL, nats (95% CI) | top-1 (95% CI) |",
    "|---|---|---|---|---|",
)


def row_line(row: dict[str, Any]) -> str:
    """One variant's quality as a table line; ``≈ best`` marks the removals that cannot be told
    from the best single removal."""
    removed = ", ".join(str(i) for i in row["removed"]) or "none"
    low, high = row["ppl_ci95"]
    cells = [removed, f"{row['ppl']:.3f} ({low:.2f}–{high:.2f})"]
    if not row["removed"]:
        return "| " + " | ".join([*cells, "reference", "0 (reference)", "1 (reference)"]) + " |"
    c_low, c_high = row["ppl_change_ci95"]
    change = f"{row['ppl_change_pct']:+.1f}% ({c_low:+.1f} … {c_high:+.1f})"
    change += " ≈ best" if row["same_as_best"] else ""
    kl = "{:.4f} ({:.4f}–{:.4f})".format(row["kl"], *row["kl_ci95"])
    top1 = "{:.3f} ({:.3f}–{:.3f})".format(row["top1_agree"], *row["top1_ci95"])
    return "| " + " | ".join([*cells, change, kl, top1]) + " |"


def readme_table(report: Path) -> str:
    """The table for the report in ``report`` (its ``results.json``), in Markdown, then its
    fingerprint line."""
    data = json.loads((report / "results.json").read_text(encoding="utf-8"))
    lines = [*HEADER, *(row_line(r) for r in data["rows"]), "", fingerprint(data["fingerprint"])]
    return "\n".join(lines) + "\n"


def fingerprint(data: dict[str, Any]) -> str:
    """The run's fingerprint without hashes: what was measured, how, where, with what."""
    fp = RunFingerprint.from_dict(data)
    bos = "none" if fp.bos is None else f"id {fp.bos}"
    return (
        f"**Fingerprint:** model `{fp.model}`, {fp.dtype} on {fp.device}; corpus `{fp.corpus}`; "
        f"protocol `{fp.protocol}`, ctx {fp.ctx}, eval tokens {fp.eval_tokens} (windows {fp.windows}), "
        f"BOS {bos}; machine: {fp.machine.describe()}; torch {fp.torch}, transformers {fp.transformers}."
    )


if __name__ == "__main__":
    print(readme_table(Path(sys.argv[1])), end="")
