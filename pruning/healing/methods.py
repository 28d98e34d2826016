"""Healing methods by name, and ``heal``: one pruned variant healed once, through the cache.

A method fits on an independent copy of the pruned model (the loaded model is never changed)
and returns what it fitted as named tensors, so that the cache can store it and ``apply`` can
rebuild the healed model on a rerun without fitting again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from pruning.common.progress import Bar, Progress, open_bar
from pruning.common.registry import Registry
from pruning.data.windows import Window
from pruning.healing.cache import HealCache, heal_key
from pruning.healing.linear import apply_linear, check_foldable, check_linear, fit_linear, removed_runs
from pruning.healing.lora import apply_lora, train_lora
from pruning.healing.settings import HealSettings
from pruning.models.surgery import remove_layers
from pruning.models.variant import Variant

Fitted = tuple[nn.Module, dict[str, torch.Tensor], list[float]]  # healed model, tensors, losses


@dataclass(frozen=True)
class Healer:
    """One healing method: ``check`` refuses a variant it cannot heal before anything runs;
    ``fit`` heals an independent pruned copy; ``apply`` rebuilds that from the fitted tensors;
    ``units`` is the length of its progress bar."""

    check: Callable[[nn.Module, Variant], None]
    fit: Callable[[nn.Module, nn.Module, Variant, Sequence[Window], HealSettings, Bar], Fitted]
    apply: Callable[[nn.Module, Variant, dict[str, torch.Tensor], HealSettings], nn.Module]
    units: Callable[[Variant, Sequence[Window], HealSettings], int]


HEALERS: Registry[Healer] = Registry("healing method")


def _fit_linear(
    base: nn.Module, pruned: nn.Module, v: Variant, w: Sequence[Window], s: HealSettings, bar: Bar
) -> Fitted:
    return pruned, fit_linear(base, pruned, v.drop, w, s.ridge, bar), []


def _check_linear(model: nn.Module, variant: Variant) -> None:
    check_linear(variant.drop, variant.id)
    check_foldable(model, variant.id)


HEALERS.register("linear")(
    Healer(
        check=_check_linear,
        fit=_fit_linear,
        apply=lambda pruned, v, tensors, s: apply_linear(pruned, v.drop, tensors),
        units=lambda v, w, s: len(w) * len(removed_runs(v.drop)),
    )
)
HEALERS.register("lora")(
    Healer(
        check=lambda model, v: None,
        fit=lambda base, pruned, v, w, s, bar: train_lora(base, pruned, w, s.lora, bar),
        apply=lambda pruned, v, tensors, s: apply_lora(pruned, tensors, s.lora),
        units=lambda v, w, s: s.lora.steps,
    )
)


@dataclass(frozen=True)
class HealRecord:
    """How a variant was healed; ``seconds``: the fit's time when it ran (on a reuse from the
    cache, the time recorded then); ``key``: its cache key (``pruning.healing.cache.heal_key``)."""

    variant: str
    method: str
    settings: dict[str, Any]
    seconds: float
    losses: tuple[float, ...]
    reused: bool
    key: str


@dataclass(frozen=True)
class Healed:
    """A healed model and its record."""

    model: nn.Module
    record: HealRecord


def heal(
    base: nn.Module,
    variant: Variant,
    windows: Sequence[Window],
    settings: HealSettings,
    run_key: str = "",
    cache: HealCache | None = None,
    progress: Progress = None,
) -> Healed:
    """``variant`` (its ``heal`` names the method) healed on calibration ``windows``, or reused
    from ``cache``; ``run_key`` names the run (model, weights, protocol) in the cache key."""
    healer = HEALERS.get(variant.heal)
    healer.check(base, variant)
    own = {**settings.of(variant.heal), "tokens": sum(int(w.ids.shape[0]) for w in windows)}  # as read
    key = heal_key(run_key, variant.drop, variant.heal, own, windows)
    pruned = remove_layers(base, variant.drop, copy=True)  # independent: healing changes weights
    found = None if cache is None else cache.get(key)
    if found is not None:
        tensors, meta = found
        model = healer.apply(pruned, variant, tensors, settings)
        seconds, losses = float(meta["seconds"]), tuple(meta["losses"])
        return Healed(model, HealRecord(variant.id, variant.heal, own, seconds, losses, True, key))
    bar = open_bar(f"healing {variant.id}", healer.units(variant, windows, settings), progress)
    start = time.perf_counter()
    model, tensors, curve = healer.fit(base, pruned, variant, windows, settings, bar)
    seconds = time.perf_counter() - start
    bar.close()
    if cache is not None:
        cache.put(key, tensors, {"variant": variant.id, "settings": own, "seconds": seconds, "losses": curve})
    return Healed(model, HealRecord(variant.id, variant.heal, own, seconds, tuple(curve), False, key))
