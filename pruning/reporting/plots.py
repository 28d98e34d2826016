"""Report plots (PNG, matplotlib's Agg backend): every title names model, corpus and tokens."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from pruning.metrics.change import pct_change

Series = Mapping[str, Sequence[tuple[int, float, float | None]]]  # label -> (K, ppl, speed)
OFF_SCALE = 10.0  # perplexity axes stop at this multiple of the oracle's worst point


def plot_vs_blocks(path: Path, series: Series, title: str, speed_label: str, unit: str = "blocks") -> Path:
    """Perplexity (log) and prefill speed against blocks removed, one line per criterion.

    The perplexity axis stops at ``OFF_SCALE`` x the oracle's largest perplexity, so the
    criteria near the oracle stay apart; points above it are drawn as triangles on the top
    edge.
    """
    fig, (ax_ppl, ax_speed) = plt.subplots(1, 2, figsize=(13, 5.5), constrained_layout=True)
    oracle = [p for _, p, _ in series.get("oracle", ())]
    top = OFF_SCALE * max(oracle) if oracle else None
    for label, points in series.items():
        ks = [k for k, _, _ in points]
        style = {"color": "black", "linewidth": 2.5} if label == "oracle" else {}
        (line,) = ax_ppl.plot(ks, [p for _, p, _ in points], marker="o", label=label, **style)
        if top is not None:
            _mark_off_scale(ax_ppl, [k for k, p, _ in points if p > top], top, line.get_color())
        timed = [(k, s) for k, _, s in points if s is not None]
        if timed:
            ax_speed.plot(*zip(*timed, strict=True), marker="o", label=label, **style)
    ax_ppl.set(yscale="log", xlabel=f"{unit} removed (K)", ylabel="perplexity (log scale)")
    if top is not None:
        ax_ppl.set_ylim(top=top)
        ax_ppl.set_title(f"▲ = off scale (perplexity > {top:,.0f})", fontsize=9)
    ax_speed.set(xlabel=f"{unit} removed (K)", ylabel=speed_label)
    for ax in (ax_ppl, ax_speed):
        ax.grid(True, alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax_ppl.legend(fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)


def plot_pair_heatmap(
    path: Path, n_layers: int, pairs: Mapping[tuple[int, int], float], base: float, title: str
) -> Path:
    """Heatmap of the perplexity increase (%, log colour scale) for removing blocks (i, j)."""
    grid = np.full((n_layers, n_layers), np.nan)
    for (i, j), ppl in pairs.items():
        grid[i, j] = grid[j, i] = pct_change(ppl, base)
    fig, ax = plt.subplots(figsize=(8, 7), constrained_layout=True)
    image = ax.imshow(grid, cmap="viridis", norm=matplotlib.colors.LogNorm(), origin="lower")
    fig.colorbar(image, ax=ax, label="perplexity increase (%)")
    ax.set(xlabel="removed block j", ylabel="removed block i", title=title)
    return _save(fig, path)


@dataclass(frozen=True)
class SpeedPoint:
    """A variant in a speed plot: measured time (% of unpruned) with its 95% interval, and the
    time the run's depth fit predicts for its kept blocks (None without a fit)."""

    name: str
    speed: float
    ppl: float
    low: float | None = None
    high: float | None = None
    fitted: float | None = None
    kind: str = "block"  # a whole-block removal, or "sub-layer" (attention / MLP branches)

    @property
    def x(self) -> float:
        """Where the frontier places it: the fitted time where there is one, else the slowest time
        its 95% interval allows (else the measured time), so noise cannot crown a variant."""
        if self.fitted is not None:
            return self.fitted
        return self.high if self.high is not None else self.speed


def plot_pareto(path: Path, points: Sequence[SpeedPoint], title: str, speed_label: str) -> Path:
    """Prefill time against perplexity for every variant, with 95% intervals; the frontier is
    numbered and drawn at the depth fit's times, so noise cannot put a variant on it.

    Frontier points carry a number on the plot and their names in a list beside it, so no
    label can overlap another.
    """
    frontier = pareto(points)
    top = OFF_SCALE * max(p.ppl for p in frontier)
    fig, ax = plt.subplots(figsize=(12, 6), constrained_layout=True)
    for kind, marker, color in (("block", "o", "grey"), ("sub-layer", "s", "tab:blue")):
        shown = [p for p in points if p.ppl <= top and p.kind == kind]
        if shown:
            _errorbars(ax, shown, marker, color, f"{kind} variants (measured, 95% interval)")
    _mark_off_scale(ax, [p.speed for p in points if p.ppl > top], top, "grey", f"off scale (> {top:,.0f})")
    fitted = all(p.fitted is not None for p in frontier)
    label = "Pareto frontier (at the depth fit's times)"
    if not fitted:
        label = "Pareto frontier (fit, else interval's slow end)"
    ax.plot([p.x for p in frontier], [p.ppl for p in frontier], color="crimson", marker="o", label=label)
    for i, p in enumerate(frontier, start=1):  # numbers above and below in turn
        offset, align = ((0, 7), "bottom") if i % 2 else ((0, -8), "top")
        ax.annotate(
            str(i), (p.x, p.ppl), textcoords="offset points", xytext=offset, ha="center", va=align, fontsize=8
        )
    listing = "\n".join(f"{i}: {p.name}  ({p.ppl:,.4g})" for i, p in enumerate(frontier, start=1))
    ax.text(1.02, 1.0, "frontier (perplexity)\n" + listing, transform=ax.transAxes, va="top", fontsize=8)
    ax.set(yscale="log", xlabel=speed_label, ylabel="perplexity (log scale)", title=title)
    ax.set_ylim(top=top)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left", bbox_to_anchor=(1.01, 0.0), fontsize=8)  # beside the axes, off the data
    return _save(fig, path)


def _errorbars(ax: Axes, shown: Sequence[SpeedPoint], marker: str, color: str, label: str) -> None:
    errors = [
        [p.speed - (p.low if p.low is not None else p.speed) for p in shown],
        [(p.high if p.high is not None else p.speed) - p.speed for p in shown],
    ]
    ax.errorbar(
        [p.speed for p in shown], [p.ppl for p in shown], xerr=errors, fmt=marker, markersize=3.5,
        color=color, ecolor="lightgrey", elinewidth=1, label=label,
    )  # fmt: skip


def pareto(points: Sequence[SpeedPoint]) -> list[SpeedPoint]:
    """Points not dominated in (lower time, lower perplexity), by ascending time (``SpeedPoint.x``)."""
    out: list[SpeedPoint] = []
    for point in sorted(points, key=lambda p: (p.x, p.ppl)):
        if not out or point.ppl < out[-1].ppl:
            out.append(point)
    return out


def plot_latency_fit(path: Path, panels: Sequence[FitPanel], title: str) -> Path:
    """Latency against kept blocks, one panel per timing kind: every variant with its 95%
    interval, the least-squares line, and the variants whose interval misses the line in red."""
    fig, axes = plt.subplots(
        1, len(panels), figsize=(6.5 * len(panels), 5), constrained_layout=True, squeeze=False
    )
    for ax, panel in zip(axes[0], panels, strict=True):
        kept = _spread([k for k, _, _, _, _ in panel.points])
        ms = np.array([m for _, m, _, _, _ in panel.points])
        errors = [
            ms - np.array([lo for _, _, lo, _, _ in panel.points]),
            np.array([hi for *_, hi, _ in panel.points]) - ms,
        ]
        off = np.array([o for *_, o in panel.points], dtype=bool)
        ax.errorbar(
            kept[~off], ms[~off], yerr=[e[~off] for e in errors], fmt="o", color="black", label="variants"
        )
        if off.any():
            ax.errorbar(
                kept[off],
                ms[off],
                yerr=[e[off] for e in errors],
                fmt="o",
                color="crimson",
                label="off the fit",
            )
        depths = [k for k, *_ in panel.points]
        xs = np.array([min(depths), max(depths)], dtype=float)  # the line spans depths, not the fan
        line = f"{panel.per_block:.3g} {panel.unit}/block + {panel.overhead:.3g}, R² {panel.r2:.3f}"
        ax.plot(xs, panel.overhead + panel.per_block * xs, color="steelblue", label=line)
        ax.set(xlabel="kept blocks", ylabel=f"{panel.name} ({panel.unit})", title=panel.name)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)


@dataclass(frozen=True)
class FitPanel:
    """One panel of ``plot_latency_fit``: points (kept, ms, low, high, off fit) and the fit."""

    name: str
    unit: str
    points: Sequence[tuple[int, float, float, float, bool]]
    overhead: float
    per_block: float
    r2: float


def plot_scores(
    path: Path,
    truth: Sequence[float],
    scores: Mapping[str, Sequence[float]],
    title: str,
    names: Sequence[str] = (),
) -> Path:
    """Per-unit criterion scores (rank-normalised) next to the true single-removal damage; the
    x axis is the block index, or the unit ``names`` (``attn0``, ``mlp0``, ...) when given."""
    blocks = np.arange(len(truth))
    fig, (ax_truth, ax_scores) = plt.subplots(2, 1, figsize=(12, 8), sharex=True, constrained_layout=True)
    ax_truth.bar(blocks, truth, color="black")
    ax_truth.set(yscale="log", ylabel="true ppl increase (%, log)", title=title)
    ax_scores.plot(blocks, _ranks(truth), color="black", linewidth=2.5, linestyle="--", label="true damage")
    for name, values in scores.items():
        ax_scores.plot(blocks, _ranks(values), marker="o", markersize=4, linewidth=1, label=name)
    ax_scores.set(
        xlabel="unit" if names else "block index", ylabel="criterion score (rank, 0 = least important)"
    )
    if names and not all(n.isdigit() for n in names):
        ax_scores.set_xticks(blocks, list(names), rotation=90, fontsize=6)
    ax_scores.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # off the data
    for ax in (ax_truth, ax_scores):
        ax.grid(True, alpha=0.3)
    return _save(fig, path)


def _spread(xs: Sequence[int]) -> np.ndarray:
    """``xs`` with points that share a value fanned out over ±0.3, so their intervals stay apart."""
    out = np.array(xs, dtype=float)
    for value in set(xs):
        same = np.flatnonzero(out == value)
        if len(same) > 1:
            out[same] += np.linspace(-0.3, 0.3, len(same))
    return out


def _ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks scaled to [0, 1]: 0 for the smallest value."""
    return np.argsort(np.argsort(values)) / max(len(values) - 1, 1)


def _mark_off_scale(ax: Axes, xs: Sequence[float], top: float, color: str, label: str | None = None) -> None:
    """Triangles on the top edge at ``xs``, for points above the axis limit ``top``."""
    if xs:
        ax.plot(xs, [top] * len(xs), "^", color=color, markersize=9, clip_on=False, label=label)


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


@dataclass(frozen=True)
class ProfilePoint:
    """One single removal for the layer profile: its unit (``12``, ``attn5``), perplexity ratio
    to the unpruned model with the paired 95% interval, and mean KL with its interval."""

    unit: str
    ratio: float
    ratio_ci: tuple[float, float] | None
    kl: float
    kl_ci: tuple[float, float] | None


def plot_layer_profile(path: Path, points: Sequence[ProfilePoint], title: str) -> Path:
    """Perplexity ratio (log scale) and KL per removed unit, in block order, with paired 95%
    intervals: which layers matter, and whether neighbours can be told apart."""
    fig, (ax_ppl, ax_kl) = plt.subplots(2, 1, figsize=(13, 7), sharex=True, constrained_layout=True)
    xs = np.arange(len(points))
    for ax, value, interval in ((ax_ppl, "ratio", "ratio_ci"), (ax_kl, "kl", "kl_ci")):
        ys = np.array([getattr(p, value) for p in points])
        cis = [getattr(p, interval) or (getattr(p, value),) * 2 for p in points]
        low = [y - lo for y, (lo, _) in zip(ys, cis, strict=True)]
        err = np.array([low, [hi - y for y, (_, hi) in zip(ys, cis, strict=True)]])  # (2, n)
        ax.errorbar(xs, ys, yerr=np.clip(err, 0, None), fmt="o", capsize=3)
        ax.grid(True, alpha=0.3)
    ax_ppl.set(yscale="log", ylabel="perplexity / unpruned (log scale)")
    ax_kl.set(ylabel="KL(unpruned ‖ variant), nats/token", xlabel="unit removed")
    ax_kl.set_xticks(xs, [p.unit for p in points], rotation=90 if len(points) > 40 else 0, fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)


@dataclass(frozen=True)
class TaskPoint:
    """One variant on one task: its perplexity ratio to the unpruned model and its accuracy
    change in points with the paired 95% interval."""

    label: str
    ratio: float
    change: float
    change_ci: tuple[float, float]


def plot_tasks(path: Path, points: Mapping[str, Sequence[TaskPoint]], title: str) -> Path:
    """Per task, each variant's accuracy change (paired interval) against its perplexity ratio
    (log scale): do the two rank the removals alike?"""
    width = max(8.0, 6.5 * len(points))  # one task: wide enough for the title
    fig, axes = plt.subplots(1, len(points), figsize=(width, 5), squeeze=False, constrained_layout=True)
    for ax, (task, pts) in zip(axes[0], sorted(points.items()), strict=True):
        xs = np.array([p.ratio for p in pts])
        ys = np.array([p.change for p in pts])
        err = np.array([[p.change - p.change_ci[0] for p in pts], [p.change_ci[1] - p.change for p in pts]])
        ax.errorbar(xs, ys, yerr=np.clip(err, 0, None), fmt="o", capsize=3)
        for p in pts:
            ax.annotate(p.label, (p.ratio, p.change), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.set(
            xscale="log",
            xlabel="perplexity / unpruned (log scale)",
            ylabel="accuracy change (points)",
            title=task,
        )
        ax.grid(True, alpha=0.3)
    fig.suptitle(title, fontsize=10, wrap=True)
    return _save(fig, path)
