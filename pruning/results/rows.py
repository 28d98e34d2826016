"""Result rows of a pruning run and the changes relative to the unpruned model.

Definitions:
- ``ppl_change_pct`` = 100 * (ppl / ppl_base - 1);
- ``speed_ratio`` with ``speed_ratio_ci95``: variant / unpruned prefill time and its 95%
  interval from the run's interleaved timing campaign (``pruning.metrics.timing``, ``.latency``);
  ``speed_change_pct`` = 100 * (ratio - 1), negative meaning faster, ``speed_change_ci95``
  its interval; without a campaign ratio, speed_ms / speed_ms_base is used (no interval);
- ``speed_ms``: the variant's prefill latency (ms) = ratio x the unpruned model's median slot
  time in the same campaign; pytest-benchmark's own timing of the variant is in its saved JSON;
- ``decode_*``: the same for one greedy decode step through the KV cache (ms per token);
- ``long_*``: the same for prefill at the second length ``long_seq`` (``--prune-speed-seq N,M``),
  from its own interleaved campaign;
- ``speedup`` = 1 / ratio with ``speedup_ci95``: what the speed gate compares across runs;
- ``work``: the variant's work class (``pruning.models.work``): variants of one class run the
  same kernels on the same shapes, and their speed changes pool all the class's slots
  (``pruning.metrics.latency.estimates``); ``speed_own_ci95`` (``decode_``, ``long_``) is the
  interval from the variant's own slots alone, and ``speed_off_class`` marks a variant whose
  own interval excludes its class's pooled ratio: its ratio and interval are then its own;
- ``speed_off_fit`` / ``decode_off_fit``: the variant's interval excludes the latency the
  run's depth fit predicts for its kept blocks (something other than depth changed its speed);
  the fit has one point per work class (its pooled latency; variants off their class are no
  point);
- ``kl``: mean KL(unpruned || variant) per scored token (nats); ``top1_agree``: the fraction
  of scored positions where the unpruned model's top token is a top token of the variant too
  (``pruning.metrics.scoring``);
- healed rows (``heal``: the method, ``heal_s``: the seconds its fit took on this machine):
  ``unhealed_change_pct`` = 100 * (ppl / ppl_unhealed - 1), and ``recovered_pct`` = the share
  of the pruning's loss that healing won back, in mean NLL (log perplexity):
  100 * (log ppl_unhealed - log ppl) / (log ppl_unhealed - log ppl_base).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from pruning.metrics.change import pct_change
from pruning.metrics.intervals import ratio_t
from pruning.metrics.latency import DepthFit, disagrees, fit_depth
from pruning.metrics.paired import same_as_best, window_t
from pruning.metrics.perplexity import ppl_interval
from pruning.metrics.sums import VariantSums
from pruning.metrics.timing import Campaign
from pruning.models.variant import Variant, from_units
from pruning.tasks.scores import TaskScores, task_cell


@dataclass(frozen=True)
class Row:
    """One variant's measurements; speed fields are None when timing did not run."""

    id: str
    removed: tuple[int, ...]
    layers: int
    ppl: float
    ppl_ci95: tuple[float, float]
    params: int
    kl: float
    top1_agree: float
    tokens_scored: int
    window_nll: tuple[float, ...] = ()
    speed_ms: float | None = None
    decode_ms_per_token: float | None = None
    ppl_change_pct: float | None = None
    speed_change_pct: float | None = None
    speedup: float | None = None
    speed_ratio: float | None = None  # variant / unpruned prefill time, same campaign
    speed_ratio_ci95: tuple[float, float] | None = None
    speed_change_ci95: tuple[float, float] | None = None
    speedup_ci95: tuple[float, float] | None = None
    decode_ratio: float | None = None
    decode_ratio_ci95: tuple[float, float] | None = None
    decode_change_pct: float | None = None
    decode_change_ci95: tuple[float, float] | None = None
    speed_off_fit: bool | None = None
    decode_off_fit: bool | None = None
    heal: str = ""
    units: tuple[str, ...] = ()  # removed sub-layers (attn5, mlp7); whole blocks are ``removed``
    heal_s: float | None = None
    unhealed_change_pct: float | None = None
    recovered_pct: float | None = None
    long_seq: int | None = None
    long_ms: float | None = None
    long_ratio: float | None = None
    long_ratio_ci95: tuple[float, float] | None = None
    long_change_pct: float | None = None
    long_change_ci95: tuple[float, float] | None = None
    long_off_fit: bool | None = None
    work: str = ""
    speed_own_ci95: tuple[float, float] | None = None
    decode_own_ci95: tuple[float, float] | None = None
    long_own_ci95: tuple[float, float] | None = None
    speed_off_class: bool | None = None
    decode_off_class: bool | None = None
    long_off_class: bool | None = None
    window_kl: tuple[float, ...] = ()
    window_top1: tuple[int, ...] = ()
    window_tokens: tuple[int, ...] = ()
    window_starts: tuple[int, ...] = ()  # each window's first corpus token (``pruning.data.windows``)
    ppl_change_ci95: tuple[float, float] | None = None  # paired against base (pruning.metrics.paired)
    kl_ci95: tuple[float, float] | None = None
    top1_ci95: tuple[float, float] | None = None
    same_as_best: bool | None = None  # indistinguishable from the best of its size (paired)
    task_scores: dict[str, dict[str, Any]] | None = None  # task -> per-example results (TaskScores.as_dict)
    tasks: dict[str, dict[str, Any]] | None = (
        None  # task -> {metric, value, ci95, change_pts, change_ci95, n}
    )

    @property
    def variant(self) -> Variant:
        """The variant this row measured."""
        return replace(from_units([*map(str, self.removed), *self.units]), heal=self.heal)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        out = asdict(self)
        out["removed"] = list(self.removed)
        out["ppl_ci95"] = list(self.ppl_ci95)
        for key in _WINDOWS:
            out[key] = list(getattr(self, key))
        for key in _PAIRS:
            value = getattr(self, key)
            out[key] = None if value is None else list(value)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Row:
        """Inverse of ``as_dict``; unknown keys are ignored."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["removed"] = tuple(known.get("removed", ()))
        known["ppl_ci95"] = tuple(known.get("ppl_ci95", (float("nan"), float("nan"))))
        for key in _WINDOWS:
            known[key] = tuple(known.get(key, ()))
        known["units"] = tuple(known.get("units", ()))
        for key in _PAIRS:
            if known.get(key) is not None:
                known[key] = tuple(known[key])
        return cls(**known)


def quality_row(
    variant: Variant,
    sums: VariantSums,
    n_layers: int,
    params: int,
    heal_s: float | None = None,
    starts: Sequence[int] = (),
) -> Row:
    """The quality row of ``variant`` from its per-window sums (speed fields come later), over the
    windows that start at corpus tokens ``starts``."""
    return Row(
        heal=variant.heal,
        units=variant.sublayers,
        heal_s=heal_s,
        id=variant.id,
        removed=variant.drop,
        layers=n_layers - len(variant.drop),
        ppl=sums.ppl,
        ppl_ci95=ppl_interval(sums.nll, sums.tokens),
        params=params,
        kl=sums.mean_kl,
        top1_agree=sums.top1_agree,
        tokens_scored=sums.scored,
        window_nll=tuple(sums.nll),
        window_kl=tuple(sums.kl),
        window_top1=tuple(sums.top1),
        window_tokens=tuple(sums.tokens),
        window_starts=tuple(starts),
    )


_WINDOWS = ("window_nll", "window_kl", "window_top1", "window_tokens", "window_starts")
_PAIRS = (
    "ppl_change_ci95",
    "kl_ci95",
    "top1_ci95",
    "speed_ratio_ci95",
    "speed_change_ci95",
    "speedup_ci95",
    "decode_ratio_ci95",
    "decode_change_ci95",
    "long_ratio_ci95",
    "long_change_ci95",
    "speed_own_ci95",
    "decode_own_ci95",
    "long_own_ci95",
)


def with_changes(rows: Iterable[Row]) -> list[Row]:
    """Rows with the changes against the ``base`` row filled in (unchanged if there is none)."""
    rows = list(rows)
    base = next((r for r in rows if r.id == "base"), None)
    if base is None:
        return rows
    unhealed = {r.variant: r for r in rows if not r.heal}
    out = []
    for row in rows:
        plain = unhealed.get(row.variant.unhealed) if row.heal else None
        speed = row.speed_ratio if row.speed_ratio is not None else _ratio(row.speed_ms, base.speed_ms)
        interval = row.speed_ratio_ci95
        out.append(
            replace(
                row,
                ppl_change_pct=pct_change(row.ppl, base.ppl),
                speed_change_pct=None if speed is None else pct_change(speed, 1.0),
                speed_change_ci95=None if interval is None else _pct_pair(interval),
                speedup=None if speed is None else 1.0 / speed,
                speedup_ci95=None if interval is None else (1.0 / interval[1], 1.0 / interval[0]),
                decode_change_pct=None if row.decode_ratio is None else pct_change(row.decode_ratio, 1.0),
                decode_change_ci95=None
                if row.decode_ratio_ci95 is None
                else _pct_pair(row.decode_ratio_ci95),
                long_change_pct=None if row.long_ratio is None else pct_change(row.long_ratio, 1.0),
                long_change_ci95=None if row.long_ratio_ci95 is None else _pct_pair(row.long_ratio_ci95),
                unhealed_change_pct=None if plain is None else pct_change(row.ppl, plain.ppl),
                recovered_pct=None if plain is None else _recovered(row.ppl, plain.ppl, base.ppl),
                **_paired(row, base),
                tasks=_tasks(row, base),
            )
        )
    return _with_rank_groups(out)


def _paired(row: Row, base: Row) -> dict[str, Any]:
    """The paired intervals of ``row`` against ``base`` on the same windows
    (``pruning.metrics.paired``); none for the base itself or rows without per-window sums."""
    tokens = row.window_tokens
    if row.id == "base" or len(tokens) < 2 or tokens != base.window_tokens:
        return {}
    diff = [a - b for a, b in zip(row.window_nll, base.window_nll, strict=True)]
    out: dict[str, Any] = {"ppl_change_ci95": window_t(diff, tokens)}
    if len(row.window_kl) == len(tokens) == len(row.window_top1):  # older reports lack them
        out["kl_ci95"] = ratio_t(row.window_kl, tokens)  # KL per token
        out["top1_ci95"] = ratio_t([float(t) for t in row.window_top1], tokens)  # agreement share
    return out


def _tasks(row: Row, base: Row) -> dict[str, dict[str, Any]] | None:
    """Each task's accuracy with its interval, and its paired change against ``base`` in points
    (``pruning.tasks.scores.task_cell``); None without task results."""
    if not row.task_scores:
        return None
    theirs = base.task_scores or {}
    cells = {}
    for name, data in sorted(row.task_scores.items()):
        reference = None if row.id == "base" or name not in theirs else TaskScores.from_dict(theirs[name])
        cells[name] = task_cell(TaskScores.from_dict(data), reference)
    return cells


def _with_rank_groups(rows: list[Row]) -> list[Row]:
    """Rows with ``same_as_best`` marked among the unhealed removals of each size."""
    ranked = [r for r in rows if r.id != "base" and not r.heal and len(r.window_tokens) >= 2]
    if not ranked or len({r.window_tokens for r in ranked}) != 1:
        return rows
    sizes = {r.id: len(r.variant.units) for r in ranked}
    marks = same_as_best({r.id: r.window_nll for r in ranked}, ranked[0].window_tokens, sizes)
    return [replace(r, same_as_best=marks.get(r.id)) for r in rows]


def _recovered(healed: float, unhealed: float, base: float) -> float | None:
    """The share (%) of the log-perplexity loss from ``base`` to ``unhealed`` that healing won back."""
    loss = math.log(unhealed) - math.log(base)
    return None if loss <= 0 else 100.0 * (math.log(unhealed) - math.log(healed)) / loss


def _pct_pair(ratios: tuple[float, float]) -> tuple[float, float]:
    return pct_change(ratios[0], 1.0), pct_change(ratios[1], 1.0)


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


@dataclass(frozen=True)
class TimedFields:
    """Which ``Row`` fields hold one timing kind's latency, ratio, interval, own interval and
    marks (``<prefix>_own_ci95``, ``<prefix>_off_class``)."""

    latency: str
    ratio: str
    interval: str
    off_fit: str
    unit: str
    prefix: str

    @property
    def own(self) -> str:
        """The field of the variant's own interval."""
        return f"{self.prefix}_own_ci95"

    @property
    def off_class(self) -> str:
        """The field of the off-class mark."""
        return f"{self.prefix}_off_class"


TIMED = {
    "prefill": TimedFields("speed_ms", "speed_ratio", "speed_ratio_ci95", "speed_off_fit", "ms", "speed"),
    "decode": TimedFields(
        "decode_ms_per_token", "decode_ratio", "decode_ratio_ci95", "decode_off_fit", "ms/token", "decode"
    ),
    "prefill_long": TimedFields("long_ms", "long_ratio", "long_ratio_ci95", "long_off_fit", "ms", "long"),
}


def timed_fields(kind: str, campaign: Campaign, variant: str) -> dict[str, Any]:
    """The ``Row`` fields of timing kind ``kind`` for ``variant`` from its campaign: latency,
    reported ratio and interval, own interval, off-class mark."""
    f, estimate = TIMED[kind], campaign.estimates[variant]
    change, own = estimate.change, estimate.own
    return {
        f.latency: campaign.latency_ms(variant),
        f.ratio: change.ratio,
        f.interval: (change.low, change.high),
        f.own: (own.low, own.high),
        f.off_class: estimate.off_class,
    }


@dataclass(frozen=True)
class SpeedFits:
    """The run's depth fits (``pruning.metrics.latency.fit_depth``): prefill ms, decode ms per
    token, prefill ms at the second length."""

    prefill: DepthFit | None
    decode: DepthFit | None
    prefill_long: DepthFit | None = None

    def of(self, kind: str) -> DepthFit | None:
        """The fit of timing kind ``kind`` (a key of ``TIMED``)."""
        return {"prefill": self.prefill, "decode": self.decode, "prefill_long": self.prefill_long}.get(kind)


def with_fits(rows: Sequence[Row]) -> tuple[list[Row], SpeedFits]:
    """Fit latency against kept blocks and mark the rows whose interval excludes the fit."""
    base = next((r for r in rows if r.id == "base"), None)
    fits = SpeedFits(*(_fit(rows, TIMED[kind]) for kind in ("prefill", "decode", "prefill_long")))
    if base is None:
        return list(rows), fits
    marks = {
        kind: {
            r.id: None if r.units else _off(getattr(r, f.interval), fits.of(kind), r.layers, base.layers)
            for r in rows
        }
        for kind, f in TIMED.items()
    }
    out = [
        replace(
            r,
            speed_off_fit=marks["prefill"][r.id],
            decode_off_fit=marks["decode"][r.id],
            long_off_fit=marks["prefill_long"][r.id],
        )
        for r in rows
    ]
    return out, fits


def _fit(rows: Sequence[Row], fields: TimedFields) -> DepthFit | None:
    """The depth fit over whole-block variants (a sub-layer variant's work is not a block count):
    one point per work class, its pooled latency. A variant off its class is no point: its
    latency is by test not explained by its work, so it could only pull the fit off the rest
    (it is still checked against the fit)."""
    points: dict[str, Row] = {}
    for r in rows:
        if getattr(r, fields.latency) is None or not getattr(r, fields.interval) or r.units:
            continue
        if not getattr(r, fields.off_class):
            points.setdefault(r.work or r.id, r)
    latency = {key: getattr(r, fields.latency) for key, r in points.items()}
    return fit_depth(latency, {key: r.layers for key, r in points.items()})


def _off(interval: tuple[float, float] | None, fit: DepthFit | None, kept: int, base: int) -> bool | None:
    """Whether ``interval`` misses the fit; None where there is nothing to check: no interval, or
    no fit with a residual (a line through two work classes holds both exactly)."""
    if interval is None or fit is None or fit.points <= 2:
        return None
    return disagrees(interval, fit, kept, base)
