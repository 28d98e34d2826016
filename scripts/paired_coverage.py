"""How often does a paired 95% interval of the perplexity change cover the population's change?

    pytest benchmarks -p no:cacheprovider -k quality --prune-eval-tokens 131072 \\
        --prune-report docs/results/paired-coverage/population
    python scripts/paired_coverage.py docs/results/paired-coverage/population/results.json \\
        docs/results/paired-coverage/coverage.json [--draws 500 --windows 8]

It writes ``coverage.json`` (``pooled_coverage``: the reported method's, over random draws) and
``coverage.md`` (the same as tables) beside it.

The population is a run of the default sequential plan over 131,072 WikiText-2 test tokens
(256 windows of 512): its per-window NLL sums (``window_nll``) for the unpruned model and each
single removal. The change each removal makes over all 256 windows is the truth. Each draw takes
``--windows`` windows, either anywhere (``random``: a set of distinct windows) or in a row from a
random start (``consecutive``: how a real run reads the corpus), and computes every interval
method of ``pruning.metrics.paired`` on them; coverage is the share of draws whose interval holds
the truth, per variant and pooled over all variants and draws.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

from pruning.metrics.paired import METHODS, change_pct, marginal

Population = dict[str, list[float]]  # variant id -> per-window NLL sums
KINDS = ("random", "consecutive")
CHOSEN = "window_t"  # the method the reports use; ``pooled_coverage`` is its coverage over random draws


def draws(n_windows: int, size: int, count: int, kind: str, seed: int = 0) -> list[list[int]]:
    """``count`` sets of ``size`` window indices: ``random`` (distinct, anywhere) or
    ``consecutive`` (a run from a random start)."""
    rng = random.Random(seed)
    if kind == "random":
        return [sorted(rng.sample(range(n_windows), size)) for _ in range(count)]
    starts = [rng.randrange(n_windows - size + 1) for _ in range(count)]
    return [list(range(start, start + size)) for start in starts]


def coverage(pop: Population, tokens: list[int], sets: list[list[int]]) -> dict[str, dict[str, float]]:
    """Per method (the paired ones and ``marginal``): coverage per variant and ``pooled``."""
    base = pop["base"]
    out: dict[str, dict[str, float]] = {}
    names = [*METHODS, "marginal"]
    for name in names:
        hits: dict[str, int] = {}
        for vid, nll in pop.items():
            if vid == "base":
                continue
            diff = [a - b for a, b in zip(nll, base, strict=True)]
            truth = change_pct(diff, tokens)
            hit = 0
            for s in sets:
                d, n = [diff[i] for i in s], [tokens[i] for i in s]
                if name == "marginal":
                    low, high = marginal([nll[i] for i in s], [base[i] for i in s], n)
                else:
                    low, high = METHODS[name](d, n)
                hit += low <= truth <= high
            hits[vid] = hit
        per = {vid: h / len(sets) for vid, h in hits.items()}
        out[name] = {**per, "pooled": sum(hits.values()) / (len(sets) * len(hits))}
    return out


def markdown(result: dict[str, Any], truths: dict[str, float]) -> str:
    """The coverage tables: pooled, then per variant, for both kinds of draw."""
    names = [*METHODS, "marginal"]
    head = "| variant | true change (%) | " + " | ".join(f"{m} ({k})" for k in KINDS for m in names) + " |"
    lines = [head, "|" + "---|" * (2 + len(names) * len(KINDS))]
    for vid in ["pooled", *truths]:
        truth = "—" if vid == "pooled" else f"{truths[vid]:+.2f}"
        cells = [f"{100 * result[k][m][vid]:.1f}%" for k in KINDS for m in names]
        lines.append(f"| {vid} | {truth} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("population", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--windows", type=int, default=8)
    args = parser.parse_args()
    report = json.loads(args.population.read_text())
    rows = [r for r in report["rows"] if len(r["removed"]) <= 1 and not r.get("heal")]
    pop = {r["id"]: list(r["window_nll"]) for r in rows}
    per_window, rest = divmod(rows[0]["tokens_scored"], len(rows[0]["window_nll"]))
    if rest:
        raise SystemExit("the population's windows score different token counts; expected equal windows")
    tokens = [per_window] * len(rows[0]["window_nll"])
    truths = {
        vid: change_pct([a - b for a, b in zip(nll, pop["base"], strict=True)], tokens)
        for vid, nll in pop.items()
        if vid != "base"
    }
    result: dict[str, Any] = {"windows": len(tokens), "draws": args.draws, "size": args.windows}
    result["true_change_pct"] = truths
    for kind in KINDS:
        sets = draws(len(tokens), args.windows, args.draws, kind)
        result[kind] = coverage(pop, tokens, sets)
        pooled = {m: round(v["pooled"], 4) for m, v in result[kind].items()}
        print(f"{kind}: pooled coverage {pooled}", flush=True)
    result["pooled_coverage"] = result["random"][CHOSEN]["pooled"]
    result["method"] = CHOSEN
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result, truths))


if __name__ == "__main__":
    main()
