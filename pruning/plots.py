"""Report plots (PNG, matplotlib's Agg backend): every title names model, corpus and tokens."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

Series = Mapping[str, Sequence[tuple[int, float, float | None]]]  # label -> (K, ppl, speed ms)


def plot_vs_blocks(path: Path, series: Series, title: str) -> Path:
    """Perplexity (log) and prefill time against blocks removed, one line per criterion."""
    fig, (ax_ppl, ax_speed) = plt.subplots(1, 2, figsize=(13, 5), constrained_layout=True)
    for label, points in series.items():
        ks = [k for k, _, _ in points]
        style = {"color": "black", "linewidth": 2.5} if label == "oracle" else {}
        ax_ppl.plot(ks, [p for _, p, _ in points], marker="o", label=label, **style)
        timed = [(k, s) for k, _, s in points if s is not None]
        if timed:
            ax_speed.plot(*zip(*timed, strict=True), marker="o", label=label, **style)
    ax_ppl.set(yscale="log", xlabel="blocks removed (K)", ylabel="perplexity (log scale)")
    ax_speed.set(xlabel="blocks removed (K)", ylabel="prefill time (ms, median)")
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
        grid[i, j] = grid[j, i] = 100.0 * (ppl / base - 1.0)
    fig, ax = plt.subplots(figsize=(8, 7), constrained_layout=True)
    image = ax.imshow(grid, cmap="viridis", norm=matplotlib.colors.LogNorm(), origin="lower")
    fig.colorbar(image, ax=ax, label="perplexity increase (%)")
    ax.set(xlabel="removed block j", ylabel="removed block i", title=title)
    return _save(fig, path)


def plot_pareto(path: Path, points: Sequence[tuple[str, float, float]], title: str) -> Path:
    """Prefill time against perplexity for every variant; the Pareto frontier is labelled."""
    frontier = pareto(points)
    fig, ax = plt.subplots(figsize=(10, 6), constrained_layout=True)
    ax.scatter([s for _, s, _ in points], [p for _, _, p in points], s=14, color="grey", label="variants")
    fx, fy = [s for _, s, _ in frontier], [p for _, _, p in frontier]
    ax.plot(fx, fy, color="crimson", marker="o", label="Pareto frontier")
    for i, (name, speed, ppl) in enumerate(frontier):  # alternate offsets so labels do not collide
        ax.annotate(
            name, (speed, ppl), textcoords="offset points", xytext=(6, 10 if i % 2 else -14), fontsize=8
        )
    ax.set(yscale="log", xlabel="prefill time (ms, median)", ylabel="perplexity (log scale)", title=title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    return _save(fig, path)


def pareto(points: Sequence[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    """Points not dominated in (lower time, lower perplexity), by ascending time."""
    out: list[tuple[str, float, float]] = []
    for point in sorted(points, key=lambda p: (p[1], p[2])):
        if not out or point[2] < out[-1][2]:
            out.append(point)
    return out


def plot_scores(
    path: Path, truth: Sequence[float], scores: Mapping[str, Sequence[float]], title: str
) -> Path:
    """Per-block criterion scores (rank-normalised) next to the true single-removal damage."""
    blocks = np.arange(len(truth))
    fig, (ax_truth, ax_scores) = plt.subplots(2, 1, figsize=(12, 8), sharex=True, constrained_layout=True)
    ax_truth.bar(blocks, truth, color="black")
    ax_truth.set(yscale="log", ylabel="true ppl increase (%, log)", title=title)
    for name, values in scores.items():
        ranks = np.argsort(np.argsort(values)) / max(len(values) - 1, 1)
        ax_scores.plot(blocks, ranks, marker="o", label=name)
    ax_scores.set(xlabel="block index", ylabel="criterion score (rank, 0 = least important)")
    ax_scores.legend(fontsize=8, ncol=3)
    for ax in (ax_truth, ax_scores):
        ax.grid(True, alpha=0.3)
    return _save(fig, path)


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
