"""How good is a criterion? Its scores and choices checked against measured truth.

- truth: the single-removal perplexity increase on the *evaluation* text, per block;
- spearman / kendall: rank correlation between a criterion's per-block scores and that truth
  (None for criteria without per-block scores: ``last``, ``sleb``);
- regret@K = 100 * (ppl of the criterion's K-set / ppl of the oracle's K-set - 1), both
  measured on the evaluation text; the oracle is the best measured K-set: exhaustive for K=1
  (every single removal), the racing winner over all pairs for K=2, and for K>=3 the best of
  a greedy extension of that winner on the evaluation text and every criterion's set. So
  regret is >= 0, exact for K<=2, and a lower bound on the true regret for K>=3.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scipy.stats import kendalltau, spearmanr

from pruning.search.criteria import CriterionResult


@dataclass(frozen=True)
class Assessment:
    """One row of the criteria table."""

    criterion: str
    spearman: float | None
    kendall: float | None
    regret: dict[int, float]  # K -> percent
    chosen: dict[int, tuple[int, ...]]
    seconds: float
    scores: tuple[float, ...] | None = None  # the criterion's per-block scores


def assess(
    result: CriterionResult,
    truth: Sequence[float],
    measured: Mapping[tuple[int, ...], float],
    oracle: Mapping[int, float],
) -> Assessment:
    """Assess ``result`` against per-block ``truth`` and measured perplexities of removal sets."""
    rho = tau = None
    if result.scores is not None:
        rho = float(spearmanr(result.scores, truth).statistic)
        tau = float(kendalltau(result.scores, truth).statistic)
    regret = {
        k: 100.0 * (measured[chosen] / oracle[k] - 1.0)
        for k, chosen in result.chosen.items()
        if chosen in measured and k in oracle
    }
    return Assessment(result.name, rho, tau, regret, dict(result.chosen), result.seconds, result.scores)


def oracle_by_k(measured: Mapping[tuple[int, ...], float]) -> dict[int, float]:
    """The lowest measured perplexity for each number of removed blocks."""
    best: dict[int, float] = {}
    for drop, ppl in measured.items():
        if drop and ppl < best.get(len(drop), float("inf")):
            best[len(drop)] = ppl
    return best


def criteria_table(rows: Sequence[Assessment], k_max: int) -> tuple[list[str], list[list[str]]]:
    """``criterion | spearman | kendall | regret@K=1..k_max (%) | seconds``."""
    header = [
        "criterion",
        "spearman",
        "kendall",
        *(f"regret@K={k} (%)" for k in range(1, k_max + 1)),
        "seconds",
    ]
    cells = []
    for a in rows:
        cells.append(
            [
                a.criterion,
                _fmt(a.spearman),
                _fmt(a.kendall),
                *(_fmt(a.regret.get(k), 1) for k in range(1, k_max + 1)),
                f"{a.seconds:.1f}",
            ]
        )
    return header, cells


def _fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"
