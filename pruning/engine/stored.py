"""Store-backed evaluation: compute only the (variant, window) results the store lacks.

Every window batch the engine finishes is written to the store at once, so an interrupted
run (Ctrl-C, kill -9) rerun with the same settings computes only what is missing, and gives
the same numbers: the engine is deterministic for fixed inputs and thread count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from pruning.common.progress import open_bar
from pruning.data.windows import Window
from pruning.engine.cost import EngineStats
from pruning.engine.options import EngineOptions
from pruning.engine.prefix import evaluate_variants
from pruning.engine.store import Store
from pruning.metrics.scoring import make_reference, score, scored_logits
from pruning.metrics.sums import VariantSums, WindowSums
from pruning.models.variant import Variant

Found = dict[Variant, list[WindowSums | None]]  # per variant, per corpus window: None until known


@dataclass(frozen=True)
class StoredResult:
    """Sums per variant, the engine passes that ran, and how many results were reused."""

    scores: dict[Variant, VariantSums]
    stats: tuple[EngineStats, ...]
    reused: int
    computed: int


def evaluate_stored(
    model: nn.Module,
    windows: Sequence[Window],
    variants: Sequence[Variant],
    options: EngineOptions,
    store: Store | None = None,
) -> StoredResult:
    """Sums of ``variants`` on ``windows``, from ``store`` where present, else computed."""
    found: Found = {v: [_get(store, v, i, w) for i, w in enumerate(windows)] for v in variants}
    reused = sum(e is not None for row in found.values() for e in row)
    groups: dict[frozenset[Variant], list[int]] = {}  # the variants missing on a window -> windows
    for i in range(len(windows)):
        missing = frozenset(v for v in variants if found[v][i] is None)
        if missing:
            groups.setdefault(missing, []).append(i)
    stats = []
    for missing, indices in groups.items():

        def persist(
            local: list[int], sums: dict[Variant, list[WindowSums]], indices: list[int] = indices
        ) -> None:
            for variant, values in sums.items():
                for j, entry in zip(local, values, strict=True):
                    i = indices[j]  # engine window j is corpus window i
                    if store is not None:
                        store.put(variant, i, windows[i], entry)
                    if variant in found:
                        found[variant][i] = entry

        sub = [windows[i] for i in indices]
        stats.append(evaluate_variants(model, sub, sorted(missing), options, persist)[1])
    scores = {v: _complete(found[v]) for v in variants}
    return StoredResult(scores, tuple(stats), reused, len(variants) * len(windows) - reused)


def evaluate_models(
    reference: nn.Module,
    models: Mapping[Variant, nn.Module],
    windows: Sequence[Window],
    stores: Mapping[Variant, Store | None],
    options: EngineOptions,
) -> StoredResult:
    """Sums of ``models`` that share no prefix with ``reference`` (healed variants: their weights
    differ), from their ``stores`` where present, else computed.

    Each window the store lacks for some model runs ``reference`` once (the KL / top-1
    reference) and each such model in full, batch 1; every result is stored as it finishes.
    """
    found: Found = {v: [_get(stores.get(v), v, i, w) for i, w in enumerate(windows)] for v in models}
    reused = sum(e is not None for row in found.values() for e in row)
    todo = [(i, [v for v in models if found[v][i] is None]) for i in range(len(windows))]
    todo = [(i, missing) for i, missing in todo if missing]
    bar = open_bar("quality: healed variants x windows", sum(len(m) for _, m in todo), options.progress)
    device = next(reference.parameters()).device
    with torch.inference_mode():
        for i, missing in todo:
            window = windows[i]
            ids, start = window.ids[None].to(device), window.score_from  # (1, T)
            ref = make_reference(scored_logits(reference, ids, start))
            for variant in missing:
                logits = scored_logits(models[variant], ids, start)  # (1, n, V)
                entry = score(logits, ids[:, start:], ref).windows([window.scored])[0]
                store = stores.get(variant)
                if store is not None:
                    store.put(variant, i, window, entry)
                found[variant][i] = entry
                bar.update(1)
    bar.close()
    scores = {v: _complete(found[v]) for v in models}
    return StoredResult(scores, (), reused, len(models) * len(windows) - reused)


def _get(store: Store | None, variant: Variant, index: int, window: Window) -> WindowSums | None:
    return None if store is None else store.get(variant, index, window)


def _complete(entries: list[WindowSums | None]) -> VariantSums:
    done = [e for e in entries if e is not None]
    if len(done) != len(entries):
        raise RuntimeError("internal error: an evaluation finished with missing windows")
    return VariantSums.of(done)
