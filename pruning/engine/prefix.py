"""Prefix-shared evaluation: quality of many pruned variants, each shared prefix computed once.

For every window batch the unpruned model runs once and keeps the hidden state at the block
boundaries that later variants share (see ``pruning.engine.schedule``). Each variant then
resumes from the deepest shared state and runs only its remaining blocks, the final norm and
the head (see ``pruning.engine.runners``).

Window batches run in lanes (``pruning.engine.lanes``), each with its own step models and
cached states; the memory bound holds for all lanes together.

Each pruned variant's final hidden states are scored a vocabulary chunk at a time by its head
(``pruning.metrics.scoring.score_hidden``) where the head is a plain linear map: its (n, V)
logits never exist. Each variant's per-window NLL equals the naive full forward pass's (the
same kernels on the same inputs, up to the rounding of the head's chunked products). The
first window checks that: if any resumed variant disagrees with its naive forward by more than
``EXACT_RTOL`` relative, the engine falls back to naive evaluation and says so.
"""

from __future__ import annotations

import math
import queue
import sys
from collections.abc import Callable, Generator, Sequence
from dataclasses import replace

import torch
from torch import nn

from pruning.common.memory import reuse_large_allocations
from pruning.common.progress import Bar, open_bar
from pruning.data.windows import Window
from pruning.engine.cost import EngineStats, head_weight, schedule_shares, weighted_passes
from pruning.engine.lanes import SharedBar, in_lanes
from pruning.engine.options import EXACT_RTOL, EngineOptions
from pruning.engine.runners import Runner, States, build_runner, max_states, pass_through_head, run_step
from pruning.engine.schedule import Schedule, Step, plan_schedule
from pruning.metrics.scoring import (
    Head,
    Reference,
    batches,
    make_reference,
    plain_head,
    score,
    score_hidden,
    scored_logits,
    scored_outputs,
    self_scores,
    stack,
)
from pruning.metrics.sums import VariantSums, WindowSums
from pruning.models.surgery import get_blocks, remove_layers
from pruning.models.variant import BASE, Variant

PROBE_TOKENS = 8  # input positions of the one forward pass that checks the head is plain linear

OnWindow = Callable[[list[int], dict[Variant, list[WindowSums]]], None]
"""Called as each window batch finishes: (indices of its windows, each variant's sums on them)."""


def evaluate_variants(
    model: nn.Module,
    windows: Sequence[Window],
    variants: Sequence[Variant],
    options: EngineOptions,
    on_window: OnWindow | None = None,
) -> tuple[dict[Variant, VariantSums], EngineStats]:
    """Score every variant on every window: NLL, and KL / top-1 against the unpruned model.

    ``on_window`` sees each batch's sums after the exactness check, so callers can persist them.
    """
    reuse_large_allocations()  # (T, V) logits per variant: keep them off mmap (see common.memory)
    n_layers = len(get_blocks(model))
    lanes = max(1, min(options.lanes, math.ceil(len(windows) / options.batch_size)))
    schedule = _schedule(model, windows, variants, n_layers, options, lanes)
    results: dict[Variant, list[WindowSums]] = {step.variant: [] for step in schedule.steps}
    total = len(windows) * len(schedule.steps)
    bar = SharedBar(open_bar("quality: variants x windows", total, options.progress))
    checked = not options.share_prefixes
    groups = list(batches(windows, options.batch_size))
    head = plain_head(model, windows[0].ids[None, :PROBE_TOKENS].to(next(model.parameters()).device))
    done = _passes(model, schedule, windows, groups, lanes, head, bar)
    for group, (ids, found) in zip(groups, done, strict=True):
        if not checked:
            checked = True
            with torch.inference_mode():
                exact = _exact(model, schedule, ids, windows[group[0]].score_from, found)
            if not exact:
                done.close()  # the windows already running finish; the rest never start
                bar.close()
                return _fall_back(model, windows, variants, options, on_window)
        for variant, sums in found.items():
            results[variant] += sums
        if on_window is not None:
            on_window(group, found)
    bar.close()
    scores = {variant: VariantSums.of(sums) for variant, sums in results.items()}
    return scores, _stats(model, schedule, options, ids, lanes)


def _passes(
    model: nn.Module,
    schedule: Schedule,
    windows: Sequence[Window],
    groups: list[list[int]],
    lanes: int,
    head: Head | None,
    bar: Bar,
) -> Generator[tuple[torch.Tensor, dict[Variant, list[WindowSums]]], None, None]:
    """Every step on each window batch of ``groups``, in order, ``lanes`` batches at a time
    (``pruning.engine.lanes``): (the batch's ids, each variant's sums on its windows). With a
    plain ``head``, the pruned variants' models end in an identity and ``head`` scores them."""
    device = next(model.parameters()).device
    free: queue.SimpleQueue[list[Runner]] = queue.SimpleQueue()  # a runner set per lane: its
    for _ in range(lanes):  # placeholder and captures belong to the pass running it
        free.put([_runner(model, step, schedule.n_layers, head) for step in schedule.steps])

    def run(group: list[int]) -> tuple[torch.Tensor, dict[Variant, list[WindowSums]]]:
        runners = free.get()
        try:
            with torch.inference_mode():  # thread-local: entered on the lane's own thread
                ids = stack(windows, group).to(device)  # (B, T)
                tokens = [windows[i].scored for i in group]
                return ids, _run_window(runners, ids, windows[group[0]].score_from, tokens, head, bar)
        finally:
            free.put(runners)

    return in_lanes(run, groups, lanes)


def _fall_back(
    model: nn.Module,
    windows: Sequence[Window],
    variants: Sequence[Variant],
    options: EngineOptions,
    on_window: OnWindow | None,
) -> tuple[dict[Variant, VariantSums], EngineStats]:
    sys.stderr.write(
        f"pruning-kit: prefix-shared evaluation is not exact for "
        f"{type(model).__name__}; falling back to naive evaluation\n"
    )
    naive = replace(options, share_prefixes=False)
    return evaluate_variants(model, windows, variants, naive, on_window)


def _schedule(
    model: nn.Module,
    windows: Sequence[Window],
    variants: Sequence[Variant],
    n_layers: int,
    options: EngineOptions,
    lanes: int,
) -> Schedule:
    """The schedule, its cached states bounded so that all lanes together keep the memory bound."""
    longest = max(int(w.ids.shape[0]) for w in windows)
    bound = max_states(model, options.batch_size * longest, options) // lanes
    return plan_schedule(variants, n_layers, options.share_prefixes, bound)


def _runner(model: nn.Module, step: Step, n_layers: int, head: Head | None) -> Runner:
    runner = build_runner(model, step, n_layers)
    if head is not None and step.variant != BASE:  # the reference keeps its head: its whole
        pass_through_head(runner.model)  # logits give the reference probabilities
    return runner


def _run_window(
    runners: list[Runner], ids: torch.Tensor, start: int, tokens: list[int], head: Head | None, bar: Bar
) -> dict[Variant, list[WindowSums]]:
    """Every step on one window batch; each variant's sums on each of its windows."""
    states: States = {}
    targets = ids[:, start:]  # (B, n)
    reference: Reference | None = None
    found: dict[Variant, list[WindowSums]] = {}
    for runner in runners:
        step = runner.step
        out = run_step(runner, states, lambda m: scored_outputs(m, ids, start))  # (B, n, V or C)
        if step.variant == BASE:  # the unpruned model runs first: the fidelity reference
            logits = out.float()
            reference = make_reference(logits)
            scores = self_scores(logits, targets)
        elif head is not None:
            scores = score_hidden(out, head, targets, reference)
        else:
            scores = score(out.float(), targets, reference)
        found[step.variant] = scores.windows(tokens)
        for prefix in step.evict:
            states.pop(prefix, None)
        bar.update(ids.shape[0])
    return found


def _exact(
    model: nn.Module,
    schedule: Schedule,
    ids: torch.Tensor,
    start: int,
    found: dict[Variant, list[WindowSums]],
) -> bool:
    """Whether the first resumed variant's first-batch NLLs match a naive forward pass.

    One resumed variant exercises the placeholder path the others share.
    """
    resumed = next((step for step in schedule.steps if step.resume), None)
    if resumed is None:
        return True
    v = resumed.variant
    naive = remove_layers(model, v.drop, v.attn, v.mlp)
    want = score(scored_logits(naive, ids, start), ids[:, start:], None).nll.tolist()
    got = [w.nll for w in found[v]]
    return all(math.isclose(g, w, rel_tol=EXACT_RTOL) for g, w in zip(got, want, strict=True))


def _stats(
    model: nn.Module, schedule: Schedule, options: EngineOptions, ids: torch.Tensor, lanes: int
) -> EngineStats:
    naive = plan_schedule([s.variant for s in schedule.steps], schedule.n_layers, share=False)
    width = int(getattr(getattr(model, "config", None), "hidden_size", 0))
    state_bytes = ids.numel() * width * next(model.parameters()).element_size()
    shares = schedule_shares(model, schedule, int(ids.shape[1]))
    return EngineStats(
        "prefix" if options.share_prefixes else "naive",
        weighted_passes(schedule, shares),
        schedule.head_passes,
        weighted_passes(naive, shares),
        naive.head_passes,
        head_weight(model),
        schedule.peak_states * state_bytes * lanes,  # every lane keeps its own states
    )
