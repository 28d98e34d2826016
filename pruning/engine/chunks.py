"""Chunked evaluation: variants continue over a window's positions from their own KV caches.

The racing search decides most candidates on a window's first tens of tokens. Causal
attention makes the logits at positions < p independent of the tokens from p on, so a window
can be scored a chunk of positions at a time: the first chunk runs input positions
``0 .. hi-1``; each later chunk runs only its own positions and attends to the keys and
values the earlier chunks left in each block's cache layer (the model's own ``DynamicCache``
and attention code; nothing of attention is reimplemented here). Per-token NLLs equal one
full forward pass's. The race checks that on its first continued chunk (``check_continuation``)
and, if they differ by more than 1e-5 relative, recomputes every chunk from position 0.

Within a chunk the variants walk the prefix tree as in ``pruning.engine.prefix``. Every tree node (a
kept-block prefix; it holds the cache layer of its last block) keeps that layer between
chunks, so a node is computed once per chunk whichever variant runs it. When the kept layers
would exceed the memory bound they are dropped, and the next chunk starts again from
position 0: slower, never an error.

Cost, in block-forward equivalents of one pass over the whole window: a block pass over input
positions [lo, hi) counts its FLOP share (projections and MLP per position, attention per
(query, key) pair under the causal mask); a head pass counts the head's FLOP weight times the
share of the window's scored positions it scores.
"""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn
from transformers import DynamicCache, PreTrainedConfig

from pruning.data.windows import Window
from pruning.engine.cost import block_share, forward_cost, head_weight, schedule_shares, weighted_passes
from pruning.engine.options import EXACT_RTOL, EngineOptions
from pruning.engine.runners import Runner, States, build_runner, max_states, pass_through_head, run_step
from pruning.engine.schedule import Prefix, Schedule, Step, plan_schedule
from pruning.metrics.scoring import hidden_nll, linear_head, scored_logits, token_nll
from pruning.models.surgery import get_blocks, remove_layers
from pruning.models.variant import Variant

Layers = dict[Prefix, Any]  # tree node -> its last block's cache layer over positions [0, length)
RunnerCache = dict[tuple[bool, Prefix, tuple[int, ...], tuple[int, ...]], Runner]


@dataclass(frozen=True)
class Carry:
    """What a chunk leaves to the next one of its window: every tree node's cache layer."""

    length: int  # input positions [0, length) are cached
    layers: Layers
    nbytes: int


@dataclass(frozen=True)
class ChunkResult:
    """Per-position NLL of each variant on one chunk, the carry, and the chunk's cost."""

    nll: dict[Variant, torch.Tensor]  # (stop - start,) float64, one per scored position
    carry: Carry | None  # None: dropped (memory bound), the next chunk starts from position 0
    cost: float  # block-forward equivalents (see the module docstring)


def evaluate_chunk(
    model: nn.Module,
    window: Window,
    span: tuple[int, int],
    variants: Sequence[Variant],
    carry: Carry | None,
    options: EngineOptions,
    runners: RunnerCache,
    batch_heads: bool = True,
) -> ChunkResult:
    """NLL of ``variants`` at the window's scored positions ``span`` = [start, stop).

    ``carry`` must be what the previous chunk of this window returned (its length is checked),
    or None to compute from position 0. The base model is the tree's root: it runs its shared
    prefixes, and is scored only when it is one of ``variants``.
    ``batch_heads`` scores the final hidden states of several variants with one LM-head matrix
    product instead of one per variant: the same FLOPs, at the better speed of a taller matrix
    on a CPU. It assumes logits = head(final hidden state), which ``check_continuation`` verifies.
    """
    start, stop = span
    first = window.score_from - 1  # input position whose logits score the first target
    lo, hi = (carry.length if carry is not None else 0), first + stop
    if not 0 <= start < stop <= window.scored or (carry is not None and lo != first + start):
        raise ValueError(
            f"chunk span {span!r} does not continue from {lo} cached positions; expected "
            f"0 <= start < stop <= {window.scored} with start = cached positions - {first}"
        )
    n_layers = len(get_blocks(model))
    schedule = plan_schedule(variants, n_layers, True, max_states(model, hi - lo, options), reference=False)
    nll, layers = _run(model, schedule, window, (lo, hi), stop - start, carry, runners, batch_heads)
    nbytes = sum(_layer_bytes(layer) for layer in layers.values())
    kept = Carry(hi, layers, nbytes) if nbytes <= options.max_state_mb * 2**20 else None
    length = int(window.ids.shape[0])
    share = block_share(model, length, lo, hi)
    passes = weighted_passes(schedule, schedule_shares(model, schedule, length))
    heads = schedule.head_passes * (stop - start) / window.scored  # share of the scored positions
    return ChunkResult(nll, kept, forward_cost(passes * share, heads, head_weight(model)))


def _run(
    model: nn.Module,
    schedule: Schedule,
    window: Window,
    positions: tuple[int, int],
    keep: int,
    carry: Carry | None,
    runners: RunnerCache,
    batch_heads: bool,
) -> tuple[dict[Variant, torch.Tensor], Layers]:
    """Run input positions [lo, hi) of every step; score the last ``keep`` of them.

    ``runners`` keeps the step models between chunks; those this chunk did not use are dropped.
    """
    lo, hi = positions
    ids = window.ids[None, lo:hi].to(next(model.parameters()).device)  # (1, hi - lo)
    targets = window.ids[hi - keep + 1 : hi + 1].to(ids.device)  # (keep,) the next tokens
    heads = _Heads(model, targets) if batch_heads else None
    states: States = {}
    layers: Layers = {}
    nll: dict[Variant, torch.Tensor] = {}
    used = {_runner_key(step, batch_heads) for step in schedule.steps}
    for key in [k for k in runners if k not in used]:
        del runners[key]
    with torch.inference_mode():
        for step in schedule.steps:
            runner = _runner(model, step, schedule.n_layers, runners, batch_heads)
            logits, cache = _forward(runner, step, ids, keep, carry, states)
            layers.update(_harvest(cache, step))
            if step.scored:  # (base, running only the prefixes the others share, is not)
                if heads is None:
                    nll[step.variant] = token_nll(logits[0], targets)
                else:  # the runner's head is a pass-through: these are final hidden states
                    heads.add(step.variant, logits[0])
            for prefix in step.evict:
                states.pop(prefix, None)
        if heads is not None:
            nll = heads.flush()
    return nll, layers


def _forward(
    runner: Runner, step: Step, ids: torch.Tensor, keep: int, carry: Carry | None, states: States
) -> tuple[torch.Tensor, DynamicCache]:
    """One step's forward over ``ids``: its logits (1, keep, V) and its filled cache."""
    cache = _prefill(runner, step, carry)
    cached = {_cache_argument(runner.model): cache}

    def forward(model: nn.Module) -> torch.Tensor:
        logits: torch.Tensor = model(input_ids=ids, use_cache=True, logits_to_keep=keep, **cached).logits
        return logits

    return run_step(runner, states, forward), cache


HEAD_ROWS = 512  # hidden states per batched LM-head product (CPU matmuls are slow below ~128)


class _Heads:
    """Batched LM-head scoring: stacks variants' final hidden states, one head product per batch."""

    def __init__(self, model: nn.Module, targets: torch.Tensor) -> None:
        self.module = cast(nn.Module, cast(Any, model).get_output_embeddings())
        self.head = linear_head(self.module)  # None: placed by accelerate, run as a module
        self.targets = targets  # (keep,) the same next tokens for every variant
        self.pending: list[tuple[Variant, torch.Tensor]] = []
        self.nll: dict[Variant, torch.Tensor] = {}

    def add(self, variant: Variant, hidden: torch.Tensor) -> None:
        self.pending.append((variant, hidden))  # (keep, C)
        if len(self.pending) * len(self.targets) >= HEAD_ROWS:
            self.flush()

    def flush(self) -> dict[Variant, torch.Tensor]:
        if self.pending:
            hidden = torch.cat([h for _, h in self.pending])  # (rows, C)
            targets = self.targets.to(hidden.device).repeat(len(self.pending))  # (rows,)
            if self.head is not None:
                nll = hidden_nll(hidden, self.head, targets)  # (rows,)
            else:
                nll = token_nll(self.module(hidden), targets)
            for (variant, _), part in zip(self.pending, torch.split(nll, len(self.targets)), strict=True):
                self.nll[variant] = part
            self.pending.clear()
        return self.nll


def _runner_key(step: Step, batch_heads: bool) -> tuple[bool, Prefix, tuple[int, ...], tuple[int, ...]]:
    return (_headless(step, batch_heads), step.resume, step.run, step.capture)


def _headless(step: Step, batch_heads: bool) -> bool:
    """Whether the step's model ends in a pass-through head: its hidden states are scored in a
    batch, or nobody scores it."""
    return batch_heads or not step.scored


def _runner(model: nn.Module, step: Step, n_layers: int, runners: RunnerCache, batch_heads: bool) -> Runner:
    key = _runner_key(step, batch_heads)
    if key not in runners:
        runner = build_runner(model, step, n_layers)
        if _headless(step, batch_heads):
            pass_through_head(runner.model)
        runners[key] = runner
    return runners[key]


def _cache_argument(model: nn.Module) -> str:
    """The forward argument that takes a cache: ``cache`` from transformers 5.24 on."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _nodes(step: Step) -> list[Prefix]:
    """The tree node of each block the step's model runs, in its block order."""
    return [step.resume + step.run[: k + 1] for k in range(len(step.run))]


def _prefill(runner: Runner, step: Step, carry: Carry | None) -> DynamicCache:
    """A cache for the step's model holding each of its blocks' layers over [0, carry.length).

    The ``Resume`` placeholder runs no attention, but the model reads the cached length from
    the first layers to place positions and masks: it gets a copy of its prefix's layer. (A block
    without attention has a layer too, of position marks: ``pruning.models.sublayers``.)
    """
    cache = DynamicCache(config=cast(PreTrainedConfig, runner.model.config))
    if carry is None:
        return cache
    slots = ([step.resume] if runner.resume is not None else []) + _nodes(step)
    for k, node in enumerate(slots):
        cache.layers[k] = copy.copy(carry.layers[node])  # update() rebinds tensors, never writes them
    return cache


def _harvest(cache: DynamicCache, step: Step) -> Layers:
    offset = 1 if step.resume else 0
    return {node: cache.layers[k + offset] for k, node in enumerate(_nodes(step))}


def _layer_bytes(layer: Any) -> int:
    keys, values = getattr(layer, "keys", None), getattr(layer, "values", None)
    if not isinstance(keys, torch.Tensor) or not isinstance(values, torch.Tensor):
        return 0
    return keys.numel() * keys.element_size() + values.numel() * values.element_size()


def check_continuation(
    model: nn.Module, window: Window, span: tuple[int, int], variant: Variant, got: torch.Tensor
) -> bool:
    """Whether ``got`` (a continued chunk's NLL of ``variant``) matches a full forward pass."""
    start, stop = span
    ids = window.ids[None, : window.score_from + stop].to(next(model.parameters()).device)
    with torch.inference_mode():  # the scored positions of the span, as one plain forward pass
        pruned = remove_layers(model, variant.drop, variant.attn, variant.mlp)
        logits = scored_logits(pruned, ids, window.score_from + start)
    want = token_nll(logits[0], ids[0, window.score_from + start :])
    return math.isclose(float(got.sum()), float(want.sum()), rel_tol=EXACT_RTOL) and bool(
        torch.allclose(got, want, rtol=1e-4, atol=1e-5)
    )
