"""The sweep engine: quality of many pruned variants with prefix-shared computation.

For every window batch the unpruned model runs once and keeps the hidden state at the block
boundaries that later variants share (see ``pruning.engine.schedule``). Each variant then resumes
from the deepest shared state and runs only its remaining blocks, the final norm and the
head. The resumed model is the model's own code (embeddings, masks, rotary tables, Gemma 3's
sliding-window masks are computed by it as usual): its block list is a ``Resume`` placeholder
that returns the cached state, followed by the remaining blocks. Nothing of attention is
reimplemented.

Each variant's per-window NLL equals the naive full forward pass (the same kernels on the
same inputs). The first window checks that: if any resumed variant disagrees with its naive
forward by more than 1e-5 relative, the engine falls back to naive evaluation and says so.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from pruning.common.progress import Bar, Progress, open_bar
from pruning.data.windows import Window
from pruning.engine.memory import reuse_large_allocations
from pruning.engine.schedule import Prefix, Schedule, Step, plan_schedule
from pruning.metrics.scoring import (
    Reference,
    batches,
    make_reference,
    score,
    scored_logits,
    self_scores,
    stack,
)
from pruning.models.parameters import count_parameters
from pruning.models.surgery import get_blocks, rebuild_blocks, remove_layers, structural_copy
from pruning.models.variant import BASE, Variant

EXACT_RTOL = 1e-5


@dataclass(frozen=True)
class EngineOptions:
    """How the engine evaluates: prefix sharing, memory bound, batch size."""

    share_prefixes: bool = True
    max_state_mb: float = 1024.0  # bound on cached hidden states; beyond it: recompute
    batch_size: int = 1
    progress: Progress = None  # None: a tqdm bar only on a terminal; or a BarFactory


@dataclass
class VariantScores:
    """Per-window sums for one variant, in window order."""

    nll: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    kl: list[float] = field(default_factory=list)
    top1: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class SweepStats:
    """What the sweep cost: passes, the naive equivalent, memory, and the head's FLOP weight."""

    strategy: str
    block_passes: int
    head_passes: int
    naive_block_passes: int
    naive_head_passes: int
    head_weight: float  # LM head FLOPs / one block's FLOPs (matmul parameters per token)
    peak_state_bytes: int

    @property
    def cost(self) -> float:
        """Cost in block-forward equivalents."""
        return self.block_passes + self.head_weight * self.head_passes

    @property
    def naive_cost(self) -> float:
        """Cost of evaluating every variant with a full forward pass."""
        return self.naive_block_passes + self.head_weight * self.naive_head_passes


class Resume(nn.Module):
    """A block-list placeholder that ignores its input and returns a cached block output."""

    def __init__(self) -> None:
        super().__init__()
        self.state: Any = None

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.state


@dataclass
class Runner:
    """One schedule step's model: a ``Resume`` placeholder (if it resumes) and its blocks."""

    step: Step
    model: nn.Module
    resume: Resume | None
    captured: dict[int, Any]


OnWindow = Callable[[list[int], dict[Variant, list[tuple[float, float, int]]]], None]


def evaluate_variants(
    model: nn.Module,
    windows: Sequence[Window],
    variants: Sequence[Variant],
    options: EngineOptions,
    on_window: OnWindow | None = None,
) -> tuple[dict[Variant, VariantScores], SweepStats]:
    """Score every variant on every window: NLL, and KL / top-1 against the unpruned model.

    ``on_window(indices, {variant: [(nll, kl, top1) per window]})`` is called as each window
    batch finishes (after the exactness check), so callers can persist results as they come.
    """
    reuse_large_allocations()  # (T, V) logits per variant: keep them off mmap (see pruning.engine.memory)
    n_layers = len(get_blocks(model))
    schedule = _schedule(model, windows, variants, n_layers, options)
    runners = [build_runner(model, step, n_layers) for step in schedule.steps]
    results = {step.variant: VariantScores() for step in schedule.steps}
    device = next(model.parameters()).device
    total = len(windows) * len(runners)
    bar = open_bar("quality: variants x windows", total, options.progress)
    checked = not options.share_prefixes
    with torch.inference_mode():
        for group in batches(windows, options.batch_size):
            ids = stack(windows, group).to(device)  # (B, T)
            start = windows[group[0]].score_from
            _run_window(runners, ids, start, results, bar)
            if not checked:
                checked = True
                if not _exact(model, runners, ids, start, results):
                    sys.stderr.write(
                        f"pruning-kit: prefix-shared evaluation is not exact for "
                        f"{type(model).__name__}; falling back to naive evaluation\n"
                    )
                    bar.close()
                    naive = EngineOptions(False, options.max_state_mb, options.batch_size, options.progress)
                    return evaluate_variants(model, windows, variants, naive, on_window)
            if on_window is not None:
                on_window(group, _last(results, len(group)))
    bar.close()
    for scores in results.values():
        scores.tokens = [w.scored for w in windows]
    return results, _stats(model, schedule, options, ids)


def _last(results: dict[Variant, VariantScores], n: int) -> dict[Variant, list[tuple[float, float, int]]]:
    return {v: list(zip(s.nll[-n:], s.kl[-n:], s.top1[-n:], strict=True)) for v, s in results.items()}


def _schedule(
    model: nn.Module,
    windows: Sequence[Window],
    variants: Sequence[Variant],
    n_layers: int,
    options: EngineOptions,
) -> Schedule:
    longest = max(int(w.ids.shape[0]) for w in windows)
    bound = max_states(model, options.batch_size * longest, options)
    return plan_schedule(variants, n_layers, options.share_prefixes, bound)


def max_states(model: nn.Module, positions: int, options: EngineOptions) -> int:
    """How many hidden states of ``positions`` positions fit in ``options.max_state_mb``."""
    width = int(getattr(model.config, "hidden_size", 0)) or 1
    state_bytes = positions * width * next(model.parameters()).element_size()
    return int(options.max_state_mb * 2**20 // max(state_bytes, 1))


def build_runner(model: nn.Module, step: Step, n_layers: int) -> Runner:
    """The model that runs ``step``, sharing ``model``'s weights; it captures the step's states."""
    if not step.resume:  # from the embeddings: the plain pruned model
        pruned = remove_layers(model, [i for i in range(n_layers) if i not in step.run])
        captured: dict[int, Any] = {}
        _hook_captures(get_blocks(pruned), step.capture, 0, captured)
        return Runner(step, pruned, None, captured)
    partial = structural_copy(model, share_weights=True, blocks=step.run)
    resume = Resume()
    sources = [step.resume[-1], *step.run]  # the placeholder takes its prefix's last block config
    rebuild_blocks(partial, [resume, *get_blocks(partial)], sources, n_layers)
    captured = {}
    _hook_captures(get_blocks(partial), step.capture, 1, captured)
    return Runner(step, partial, resume, captured)


def _hook_captures(blocks: nn.ModuleList, capture: tuple[int, ...], offset: int, out: dict[int, Any]) -> None:
    for j in capture:

        def hook(_m: nn.Module, _a: Any, output: Any, j: int = j) -> None:
            out[j] = output

        blocks[j + offset].register_forward_hook(hook)


def _run_window(
    runners: list[Runner], ids: torch.Tensor, start: int, results: dict[Variant, VariantScores], bar: Bar
) -> None:
    states: dict[Prefix, Any] = {}
    targets = ids[:, start:]  # (B, n)
    reference: Reference | None = None
    for runner in runners:
        step = runner.step
        if runner.resume is not None:
            runner.resume.state = states[step.resume]
        logits = scored_logits(runner.model, ids, start)  # (B, n, V)
        if runner.resume is not None:
            runner.resume.state = None
        for j, output in runner.captured.items():
            states[step.resume + step.run[: j + 1]] = output
        runner.captured.clear()
        if step.variant == BASE:  # the unpruned model runs first: the fidelity reference
            reference = make_reference(logits)
            scores = self_scores(logits, targets)
        else:
            scores = score(logits, targets, reference)
        _append(results[step.variant], scores)
        for prefix in step.evict:
            states.pop(prefix, None)
        bar.update(ids.shape[0])


def _append(scores: VariantScores, window: Any) -> None:
    scores.nll.extend(float(x) for x in window.nll.tolist())
    scores.kl.extend(float(x) for x in window.kl.tolist())
    scores.top1.extend(int(x) for x in window.top1.tolist())


def _exact(
    model: nn.Module,
    runners: list[Runner],
    ids: torch.Tensor,
    start: int,
    results: dict[Variant, VariantScores],
) -> bool:
    """Whether the first resumed variant's first-window NLL matches a naive forward pass.

    One resumed variant exercises the placeholder path the others share.
    """
    resumed = next((r for r in runners if r.resume is not None), None)
    if resumed is None:
        return True
    naive = remove_layers(model, resumed.step.variant.drop)
    want = score(scored_logits(naive, ids, start), ids[:, start:], None).nll.tolist()
    got = results[resumed.step.variant].nll[: len(want)]
    return all(math.isclose(g, w, rel_tol=EXACT_RTOL) for g, w in zip(got, want, strict=True))


def _stats(model: nn.Module, schedule: Schedule, options: EngineOptions, ids: torch.Tensor) -> SweepStats:
    naive = plan_schedule([s.variant for s in schedule.steps], schedule.n_layers, share=False)
    width = int(getattr(getattr(model, "config", None), "hidden_size", 0))
    state_bytes = ids.numel() * width * next(model.parameters()).element_size()
    return SweepStats(
        "prefix" if options.share_prefixes else "naive",
        schedule.block_passes,
        schedule.head_passes,
        naive.block_passes,
        naive.head_passes,
        head_weight(model),
        schedule.peak_states * state_bytes,
    )


def head_weight(model: nn.Module) -> float:
    """LM-head FLOPs per position over one block's (matmul parameters per token)."""
    block_params = count_parameters(get_blocks(model)[0])
    getter = getattr(model, "get_output_embeddings", None)
    head = getter() if callable(getter) else None
    head_params = count_parameters(head) if isinstance(head, nn.Module) else 0
    return head_params / max(block_params, 1)
