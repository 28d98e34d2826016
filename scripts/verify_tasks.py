"""Independent check of the task accuracies: lm-eval's own command line on exported variants.

    python scripts/verify_tasks.py REPORT_DIR EXPORT_DIR TASKS_DIR TASK LIMIT VARIANT [VARIANT ...]

For each variant, runs ``python -m lm_eval --model hf`` (lm-eval's command line, with this
Python) on ``EXPORT_DIR/VARIANT`` (the stock checkpoint ``--prune-export`` wrote) with the same
task YAML folder and limit, and compares its per-example metric with the report's
``task_scores``: the accuracies must be equal exactly. Prints one line per variant and exits 1
on any difference.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path


def cli_scores(model: Path, tasks: Path, task: str, limit: int, metric: str) -> dict[int, float]:
    """lm-eval's per-example ``metric`` for ``model``, from its command line's logged samples."""
    out = Path(tempfile.mkdtemp())
    cmd = [sys.executable, "-m", "lm_eval", "--model", "hf", "--tasks", task]
    cmd += ["--model_args", f"pretrained={model},dtype=float32"]
    cmd += ["--include_path", str(tasks), "--limit", str(limit), "--batch_size", "16", "--device", "cpu"]
    cmd += ["--output_path", str(out), "--log_samples", "--seed", "1234"]
    subprocess.run(cmd, check=True, capture_output=True)
    (samples,) = out.rglob(f"samples_{task}_*.jsonl")
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    return {int(r["doc_id"]): float(r[metric]) for r in rows}


def main() -> int:
    report, export, tasks, task, limit, *variants = sys.argv[1:]
    rows = {r["id"]: r for r in json.loads((Path(report) / "results.json").read_text())["rows"]}
    failed = False
    for vid in variants:
        ours = rows[vid]["task_scores"][task]
        mine = dict(zip(ours["doc_ids"], ours["values"], strict=True))
        theirs = cli_scores(Path(export) / vid, Path(tasks), task, int(limit), ours["metric"])
        same = mine == theirs
        failed |= not same
        acc = 100 * sum(mine.values()) / len(mine)
        cli = 100 * sum(theirs.values()) / len(theirs)
        verdict = "identical" if same else "DIFFERENT"
        print(
            f"{vid}: {ours['metric']} suite {acc:.2f}% on {len(mine)}, lm_eval CLI {cli:.2f}% "
            f"on {len(theirs)}, per-example {verdict}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
