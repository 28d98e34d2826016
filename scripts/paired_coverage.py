"""How often do the reports' 95% intervals cover the population's value, on the windows a run reads?

    pytest benchmarks -p no:cacheprovider -k quality --prune-eval-tokens 131072 --prune-windows first \\
        --prune-report docs/results/paired-coverage/population
    python scripts/paired_coverage.py docs/results/paired-coverage/population/results.json \\
        docs/results/paired-coverage/coverage.json [--draws 500 --windows 8]

It writes ``coverage.json`` and ``coverage.md`` (the same as tables) beside it:
``default_design_coverage`` is the paired change interval's (``window_t``) pooled coverage over
the default design's window sets, ``ppl_ci_coverage`` the perplexity interval's.

The population is a run of the default sequential plan over 131,072 WikiText-2 test tokens
(256 windows of 512): its per-window NLL sums (``window_nll``) for the unpruned model and each
single removal. The change each removal makes over all 256 windows, and each variant's
perplexity over them, are the truths. A window set takes ``--windows`` of the 256 in one of
four ways:

- ``spread``: the default run's design (``pruning.data.windows.spread_indices``: one window from
  each of k equal stretches, at positions drawn from a seed) applied to the population, for
  ``--draws`` seeds (the run's own seed is one of them);
- ``evenly``: evenly spaced windows, ``o + j m/k`` for j = 0 .. k-1, at every offset
  o = 0 .. m/k - 1 (all the sets that design can give): the design ``spread`` was chosen over;
- ``random``: ``--draws`` sets of distinct windows anywhere (what the intervals assume);
- ``consecutive``: ``--draws`` runs of windows in a row from a random start (``--prune-windows
  first``, how a run read the corpus before the spread design).

On each set it computes every interval method of ``pruning.metrics.paired`` and the perplexity
interval (``pruning.metrics.perplexity.ppl_interval``); coverage is the share of sets whose
interval holds the truth, per variant and pooled over all variants and sets.
"""

from __future__ import annotations

import argparse
import json
import math
import random
from pathlib import Path
from typing import Any

from pruning.data.protocols import spread_indices
from pruning.metrics.paired import METHODS, change_pct, marginal
from pruning.metrics.perplexity import ppl_interval

Population = dict[str, list[float]]  # variant id -> per-window NLL sums
KINDS = ("spread", "evenly", "random", "consecutive")
CHOSEN = "window_t"  # the paired method the reports use
PPL = "ppl"  # the perplexity interval, covering each variant's own population perplexity


def draws(n_windows: int, size: int, count: int, kind: str, seed: int = 0) -> list[list[int]]:
    """Sets of ``size`` window indices (module docstring): ``count`` of them, but for ``evenly``
    (every offset)."""
    rng = random.Random(seed)
    if kind == "spread":
        return [spread_indices(n_windows, size, s) for s in range(count)]
    if kind == "evenly":
        stride, rest = divmod(n_windows, size)
        if rest:
            raise SystemExit(f"{n_windows} windows do not split into {size} equal stretches")
        return [[offset + j * stride for j in range(size)] for offset in range(stride)]
    if kind == "random":
        return [sorted(rng.sample(range(n_windows), size)) for _ in range(count)]
    starts = [rng.randrange(n_windows - size + 1) for _ in range(count)]
    return [list(range(start, start + size)) for start in starts]


def ppl_coverage(pop: Population, tokens: list[int], sets: list[list[int]]) -> dict[str, float]:
    """The perplexity interval's coverage of each variant's population perplexity (base too)."""
    hits: dict[str, int] = {}
    for vid, nll in pop.items():
        truth = math.exp(math.fsum(nll) / sum(tokens))
        hits[vid] = 0
        for s in sets:
            low, high = ppl_interval([nll[i] for i in s], [tokens[i] for i in s])
            hits[vid] += low <= truth <= high
    per = {vid: h / len(sets) for vid, h in hits.items()}
    return {**per, "pooled": sum(hits.values()) / (len(sets) * len(hits))}


def coverage(
    pop: Population, tokens: list[int], sets: list[list[int]], names: tuple[str, ...] = (*METHODS, "marginal")
) -> dict[str, dict[str, float]]:
    """Per method (the paired ones and ``marginal``): coverage per variant and ``pooled``."""
    base = pop["base"]
    out: dict[str, dict[str, float]] = {}
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


def load(path: Path) -> tuple[Population, list[int]]:
    """The population's per-window NLL sums (the unpruned model and single removals) and the
    tokens each window scores, from a report's ``results.json``."""
    rows = [r for r in json.loads(path.read_text())["rows"] if len(r["removed"]) <= 1 and not r.get("heal")]
    per_window, rest = divmod(rows[0]["tokens_scored"], len(rows[0]["window_nll"]))
    if rest:
        raise SystemExit("the population's windows score different token counts; expected equal windows")
    return {r["id"]: list(r["window_nll"]) for r in rows}, [per_window] * len(rows[0]["window_nll"])


def headline(pop: Population, tokens: list[int], size: int, count: int) -> dict[str, float]:
    """``default_design_coverage`` and ``ppl_ci_coverage``: the paired interval's and the
    perplexity interval's pooled coverage over ``count`` seeds of the default design."""
    sets = draws(len(tokens), size, count, "spread")
    return {
        "default_design_coverage": coverage(pop, tokens, sets, (CHOSEN,))[CHOSEN]["pooled"],
        "ppl_ci_coverage": ppl_coverage(pop, tokens, sets)["pooled"],
    }


def markdown(result: dict[str, Any], truths: dict[str, float]) -> str:
    """The coverage tables: pooled, then per variant, for every kind of window set."""
    names = [*METHODS, "marginal", PPL]
    head = "| variant | true change (%) | " + " | ".join(f"{m} ({k})" for k in KINDS for m in names) + " |"
    lines = [head, "|" + "---|" * (2 + len(names) * len(KINDS))]
    for vid in ["pooled", "base", *truths]:
        truth = "—" if vid in ("pooled", "base") else f"{truths[vid]:+.2f}"
        cells = [_share(result[k][m].get(vid)) for k in KINDS for m in names]
        lines.append(f"| {vid} | {truth} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _share(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("population", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--windows", type=int, default=8)
    args = parser.parse_args()
    pop, tokens = load(args.population)
    truths = {
        vid: change_pct([a - b for a, b in zip(nll, pop["base"], strict=True)], tokens)
        for vid, nll in pop.items()
        if vid != "base"
    }
    result: dict[str, Any] = {"windows": len(tokens), "draws": args.draws, "size": args.windows}
    result["true_change_pct"] = truths
    for kind in KINDS:
        sets = draws(len(tokens), args.windows, args.draws, kind)
        result[kind] = {**coverage(pop, tokens, sets), PPL: ppl_coverage(pop, tokens, sets)}
        result.setdefault("sets", {})[kind] = len(sets)
        pooled = {m: round(v["pooled"], 4) for m, v in result[kind].items()}
        print(f"{kind}: pooled coverage {pooled}", flush=True)
    result |= headline(pop, tokens, args.windows, args.draws)  # the same numbers as result["spread"]
    result["pooled_coverage"] = result["random"][CHOSEN]["pooled"]  # the paired interval, random sets
    result["method"] = CHOSEN
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result, truths))


if __name__ == "__main__":
    main()
