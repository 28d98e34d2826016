"""Every variant's answers to the tasks' log-likelihood requests, in one shared pass.

The requests are the ones lm-eval makes (``pruning.tasks.harness.record_requests``), already
tokenized by lm-eval. For each batch of them the engine's schedule (``pruning.engine.schedule``)
runs the unpruned model once, keeps the hidden states later variants share, and each variant
resumes from its deepest shared state (``pruning.engine.runners``), exactly as the perplexity
sweep does. Each answer is computed as lm-eval's ``HFLM`` computes it: the input is
``(context + continuation)[-(max_length + 1):][:-1]``, right-padded in the batch (a causal model's
real positions never see the padding), the continuation's log-probabilities are summed from the
log-softmax of the last ``len(continuation)`` positions, and the answer is greedy when every one
of those positions' argmax is the continuation's token.

The cost is counted in block-forward equivalents (``pruning.engine.cost``): the shared
schedule's block and head passes against the naive schedule's, where every variant runs all of
its blocks, which is what one lm-eval run per variant computes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from pruning.common.progress import Progress, open_bar
from pruning.engine.cost import forward_cost, head_weight
from pruning.engine.runners import States, build_runner, run_step
from pruning.engine.schedule import Schedule, plan_schedule
from pruning.models.surgery import get_blocks
from pruning.models.variant import Variant
from pruning.tasks.harness import Answer, TokenRequest


@dataclass(frozen=True)
class TaskCost:
    """The shared pass's counted cost against one lm-eval run per variant (block-forward
    equivalents per request batch, summed over the batches)."""

    shared: float
    naive: float
    batches: int

    @property
    def ratio(self) -> float:
        return self.shared / self.naive if self.naive else 1.0

    def describe(self) -> str:
        return (
            f"tasks (shared pass): {self.shared:.0f} block-forward equivalents over {self.batches} request "
            f"batches vs {self.naive:.0f} for one lm-eval run per variant ({self.ratio:.2f}x)"
        )


def shared_answers(
    model: nn.Module,
    requests: Sequence[TokenRequest],
    variants: Sequence[Variant],
    max_length: int,
    batch_size: int,
    progress: Progress = None,
) -> tuple[dict[Variant, dict[TokenRequest, Answer]], TaskCost]:
    """Each variant's answer to each request, and the pass's counted cost."""
    n_layers = len(get_blocks(model))
    schedule = plan_schedule(variants, n_layers)
    runners = [build_runner(model, step, n_layers) for step in schedule.steps]
    inputs = [(context + continuation)[-(max_length + 1) :][:-1] for context, continuation in requests]
    order = sorted(range(len(requests)), key=lambda i: (-len(inputs[i]), i))  # longest first, as lm-eval
    answers: dict[Variant, dict[TokenRequest, Answer]] = {step.variant: {} for step in schedule.steps}
    device = next(model.parameters()).device
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    bar = open_bar("tasks: request batches", len(batches), progress)
    with torch.inference_mode():
        for batch in batches:
            ids = _padded([inputs[i] for i in batch], device)  # (B, T)
            states: States = {}
            for runner in runners:
                logits = run_step(runner, states, _forward(ids))  # (B, T, V)
                if runner.step.scored:
                    found = _answers(logits, [requests[i] for i in batch], [len(inputs[i]) for i in batch])
                    answers[runner.step.variant].update(found)
                for prefix in runner.step.evict:
                    states.pop(prefix, None)
            bar.update(1)
    bar.close()
    wanted = set(variants)
    return {v: a for v, a in answers.items() if v in wanted}, _cost(
        model, schedule, variants, n_layers, len(batches)
    )


def _forward(ids: torch.Tensor) -> Callable[[nn.Module], torch.Tensor]:
    """A step model's logits on ``ids`` (B, T), as lm-eval's ``HFLM`` calls a causal model."""

    def forward(model: nn.Module) -> torch.Tensor:
        logits: torch.Tensor = model(input_ids=ids).logits
        return logits

    return forward


def _padded(rows: Sequence[Sequence[int]], device: torch.device) -> torch.Tensor:
    """Right-padded (B, T) ids (pad 0, as lm-eval pads)."""
    ids = torch.zeros(len(rows), max(len(r) for r in rows), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return ids.to(device)


def _answers(
    logits: torch.Tensor, requests: Sequence[TokenRequest], lengths: Sequence[int]
) -> dict[TokenRequest, Answer]:
    """(log-likelihood, greedy) of each request's continuation, from its row of ``logits``."""
    logp = torch.log_softmax(logits.float(), dim=-1)  # (B, T, V)
    out = {}
    for row, (request, length) in enumerate(zip(requests, lengths, strict=True)):
        cont = torch.tensor(request[1], dtype=torch.long, device=logits.device)  # (n,)
        span = logp[row, length - len(cont) : length]  # (n, V): the positions predicting cont
        greedy = bool((span.argmax(-1) == cont).all())
        out[request] = (float(span.gather(1, cont[:, None]).sum()), greedy)
    return out


def _cost(
    model: nn.Module, schedule: Schedule, variants: Sequence[Variant], n_layers: int, batches: int
) -> TaskCost:
    naive = plan_schedule(variants, n_layers, share=False)
    weight = head_weight(model)
    shared = forward_cost(schedule.block_passes, schedule.head_passes, weight) * batches
    alone = forward_cost(naive.block_passes, naive.head_passes, weight) * batches
    return TaskCost(shared, alone, batches)
