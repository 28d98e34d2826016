"""The criteria table and the report plots, built from a run's rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pruning.metrics.change import pct_change
from pruning.models.variant import BASE, Variant, from_units, space_names
from pruning.reporting.plots import (
    FitPanel,
    ProfilePoint,
    SpeedPoint,
    TaskPoint,
    plot_latency_fit,
    plot_layer_profile,
    plot_pair_heatmap,
    plot_pareto,
    plot_scores,
    plot_tasks,
    plot_vs_blocks,
)
from pruning.reporting.tables import num_cell
from pruning.results.rows import TIMED, Row, SpeedFits
from pruning.search.assessment import Assessment, assess
from pruning.search.criteria import CriterionResult
from pruning.search.oracle import best_by_k, oracle_by_k

SPEED_LABEL = "prefill time, % of unpruned (interleaved in-run comparison)"


@dataclass(frozen=True)
class CriteriaReport:
    """Assessments and the rendered table (header, cells)."""

    assessments: tuple[Assessment, ...]
    header: list[str]
    cells: list[list[str]]


def build_criteria_report(
    rows: Sequence[Row], criteria: Sequence[CriterionResult], k_max: int
) -> CriteriaReport:
    """Assess every criterion against the measured single removals and the oracle of its space."""
    measured = _measured(rows)
    base = measured[BASE]
    assessments = []
    for c in criteria:
        names = space_names(c.space, _n_layers(rows))
        truth = [pct_change(measured[from_units([name])], base) for name in names]
        oracle = {k: v for k, v in oracle_by_k(measured, c.space).items() if k <= k_max}
        assessments.append(assess(c, truth, measured, oracle))
    header, cells = criteria_table(assessments, k_max)
    return CriteriaReport(tuple(assessments), header, cells)


def _measured(rows: Sequence[Row]) -> dict[Variant, float]:
    return {r.variant: r.ppl for r in rows if not r.heal}


def _n_layers(rows: Sequence[Row]) -> int:
    return max(len(r.removed) + r.layers for r in rows)


def write_plots(
    directory: Path,
    rows: Sequence[Row],
    criteria: Sequence[CriterionResult],
    k_max: int,
    title: str,
    fits: SpeedFits | None = None,
) -> list[Path]:
    """The PNG plots the rows (with changes, see ``pruning.results.rows``) support."""
    by_variant = {r.variant: r for r in rows if not r.heal}
    base = by_variant.get(BASE)
    written = _speed_plots(directory, rows, fits, title)
    written += _task_plot(directory, rows, title) if base is not None else []
    profile = _profile(rows)
    if base is not None and profile:
        path = directory / "layer_profile.png"
        written.append(plot_layer_profile(path, profile, f"Single removals, paired 95% intervals — {title}"))
    n_layers = _n_layers(rows)
    pairs = {(r.removed[0], r.removed[1]): r.ppl for r in rows if len(r.removed) == 2 and not r.units}
    if base is not None and len(pairs) == n_layers * (n_layers - 1) // 2:
        path = directory / "pairs_heatmap.png"
        written.append(plot_pair_heatmap(path, n_layers, pairs, base.ppl, f"Pair removal — {title}"))
    space = criteria[0].space if criteria else "blocks"
    names = space_names(space, n_layers)
    if criteria and base is not None and all(from_units([n]) in by_variant for n in names):
        unit = "blocks" if space == "blocks" else f"{'branches' if space == 'all' else space + ' branches'}"
        series = {c.name: _series(by_variant, c.chosen, base) for c in criteria}
        found = best_by_k(_measured(rows), space)
        series["oracle"] = _series(by_variant, {k: v for k, (v, _) in found.items() if k <= k_max}, base)
        path = directory / "criteria_vs_blocks.png"
        written.append(plot_vs_blocks(path, series, f"Criteria — {title}", SPEED_LABEL, unit))
        truth = [pct_change(by_variant[from_units([n])].ppl, base.ppl) for n in names]
        scores = {c.name: c.scores for c in criteria if c.scores is not None}
        what = "Single-block" if space == "blocks" else "Single-unit"
        path = directory / "criteria_scores.png"
        written.append(
            plot_scores(path, truth, scores, f"{what} damage and criterion scores — {title}", names)
        )
    return written


def _task_plot(directory: Path, rows: Sequence[Row], title: str) -> list[Path]:
    """``tasks_vs_ppl.png`` where the rows have task results (``--prune-tasks``)."""
    tasks = _task_points(rows)
    if not tasks:
        return []
    path = directory / "tasks_vs_ppl.png"
    return [plot_tasks(path, tasks, f"Task accuracy against perplexity — {title}")]


def _task_points(rows: Sequence[Row]) -> dict[str, list[TaskPoint]]:
    """Per task, every unhealed removal with a paired accuracy change."""
    out: dict[str, list[TaskPoint]] = {}
    for r in rows:
        if r.id == "base" or r.heal or r.ppl_change_pct is None:
            continue
        for name, cell in (r.tasks or {}).items():
            if cell.get("change_pts") is not None:
                low, high = cell["change_ci95"]
                label = ",".join(r.variant.units)
                out.setdefault(name, []).append(
                    TaskPoint(label, 1 + r.ppl_change_pct / 100, cell["change_pts"], (low, high))
                )
    return out


def _profile(rows: Sequence[Row]) -> list[ProfilePoint]:
    """The layer profile's points when every removal of the run is one unit (a sequential
    plan), in block order; none otherwise."""
    singles = [r for r in rows if r.id != "base" and not r.heal]
    if not singles or any(len(r.variant.units) != 1 for r in singles):
        return []
    out = []
    for r in sorted(singles, key=lambda r: r.variant.sort_key):
        change = r.ppl_change_ci95
        ratio_ci = None if change is None else (1 + change[0] / 100, 1 + change[1] / 100)
        ratio = 1 + (r.ppl_change_pct or 0.0) / 100
        out.append(ProfilePoint(r.variant.units[0], ratio, ratio_ci, r.kl, r.kl_ci95))
    return out


def _speed_plots(directory: Path, rows: Sequence[Row], fits: SpeedFits | None, title: str) -> list[Path]:
    """The Pareto plot (with intervals, frontier at fitted times) and latency against kept blocks."""
    base = next((r for r in rows if r.id == "base"), None)
    written = []
    timed = [p for r in rows if (p := _point(r, base, fits)) is not None]
    if timed:
        name = f"Speed vs perplexity, all variants — {title}"
        written.append(plot_pareto(directory / "pareto.png", timed, name, SPEED_LABEL))
    long = [p for r in rows if (p := _point(r, base, fits, "prefill_long")) is not None]
    seq = next((r.long_seq for r in rows if r.long_seq), None)
    if long and seq:
        name = f"Speed at {seq} tokens vs perplexity — {title}"
        written.append(
            plot_pareto(
                directory / "pareto_long.png", long, name, SPEED_LABEL.replace("prefill", f"prefill@{seq}")
            )
        )
    panels = _fit_panels(rows, fits)
    if panels:
        path = directory / "latency_vs_blocks.png"
        written.append(plot_latency_fit(path, panels, f"Latency against kept blocks — {title}"))
    return written


def _series(
    by_variant: dict[Variant, Row], chosen: dict[int, Variant], base: Row
) -> list[tuple[int, float, float | None]]:
    points = [(0, base.ppl, _speed(base))]
    points += [
        (k, by_variant[v].ppl, _speed(by_variant[v])) for k, v in sorted(chosen.items()) if v in by_variant
    ]
    return points


def _speed(row: Row) -> float | None:
    """Prefill time relative to the unpruned model (%), as ``pruning.results.rows.with_changes`` set it.

    That is the ratio from the run's interleaved campaign where timed: absolute medians drift
    over a long run on a shared machine, the interleaved comparison does not (``pruning.metrics.timing``).
    """
    return None if row.speed_change_pct is None else 100.0 + row.speed_change_pct


def _point(row: Row, base: Row | None, fits: SpeedFits | None, kind: str = "prefill") -> SpeedPoint | None:
    """The Pareto point of ``row`` for prefill timing ``kind`` (``prefill`` or ``prefill_long``)."""
    change = row.speed_change_pct if kind == "prefill" else row.long_change_pct
    if change is None:
        return None
    ci = row.speed_change_ci95 if kind == "prefill" else row.long_change_ci95
    fit = None if fits is None else fits.of(kind)
    fitted = None if fit is None or base is None else 100.0 * fit.at(row.layers) / fit.at(base.layers)
    low, high = (None, None) if ci is None else (100.0 + ci[0], 100.0 + ci[1])
    if row.units:  # the depth fit knows blocks, not branches: no fitted time (see SpeedPoint.x)
        return SpeedPoint(row.id, 100.0 + change, row.ppl, low, high, None, "sub-layer")
    return SpeedPoint(row.id, 100.0 + change, row.ppl, low, high, fitted)


def _fit_panels(rows: Sequence[Row], fits: SpeedFits | None) -> list[FitPanel]:
    panels = []
    for kind, f in TIMED.items():
        fit = None if fits is None else fits.of(kind)
        timed = [r for r in rows if getattr(r, f.latency) is not None and getattr(r, f.ratio)]
        if fit is None or not timed:
            continue
        points = []
        for r in timed:
            ms, ratio = getattr(r, f.latency), getattr(r, f.ratio)
            low, high = getattr(r, f.interval) or (ratio, ratio)
            scale = ms / ratio  # the unpruned model's ms
            points.append((r.layers, ms, low * scale, high * scale, bool(getattr(r, f.off_fit))))
        panels.append(FitPanel(kind, f.unit, points, fit.overhead_ms, fit.per_block_ms, fit.r2))
    return panels


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
                num_cell(a.spearman, 3),
                num_cell(a.kendall, 3),
                *(num_cell(a.regret.get(k), 1) for k in range(1, k_max + 1)),
                f"{a.seconds:.1f}",
            ]
        )
    return header, cells
