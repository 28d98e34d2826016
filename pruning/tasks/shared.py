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

A ``Checkpoint`` keeps each finished batch's answers, so a pass that was killed resumes at the
first batch it had not finished, with the same answers (batches are formed deterministically);
a later pass over fewer variants (some were stored meanwhile) reads theirs from it too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import torch
from torch import nn

from pruning.common.progress import Progress, open_bar
from pruning.engine.cost import forward_cost, head_weight
from pruning.engine.runners import Runner, States, build_runner, run_step
from pruning.engine.schedule import Schedule, plan_schedule
from pruning.models.surgery import get_blocks
from pruning.models.variant import Variant
from pruning.tasks.harness import Answer, TokenRequest


@dataclass(frozen=True)
class TaskCost:
    """What a task evaluation computed and what it cost: the shared pass's counted cost against one
    lm-eval run per variant (block-forward equivalents per request batch, summed over the batches
    it computed; ``reused`` batches came from a checkpoint and cost nothing), and how many variants
    were answered in it, by lm-eval's own ``HFLM`` alone (``alone``) or from the store (``stored``)."""

    shared: float
    naive: float
    batches: int
    reused: int = 0
    in_pass: int = 0
    alone: int = 0
    stored: int = 0

    @property
    def ratio(self) -> float:
        return self.shared / self.naive if self.naive else 1.0

    def lines(self) -> list[str]:
        """The summary's lines: what was computed where, and the pass's cost when one ran."""
        out = [
            f"tasks: {self.in_pass} variants answered in one shared pass, {self.alone} by lm-eval's own "
            f"HFLM alone, {self.stored} from the results store"
        ]
        if self.in_pass:
            resumed = f" ({self.reused} more resumed from a checkpoint)" if self.reused else ""
            out.append(
                f"tasks (shared pass): {self.shared:.0f} block-forward equivalents over {self.batches} "
                f"request batches{resumed} vs {self.naive:.0f} for one lm-eval run per variant "
                f"({self.ratio:.2f}x)"
            )
        return out


BatchAnswers = dict[str, list[Answer]]  # variant id -> its answers, in the batch's request order


class Checkpoint(Protocol):
    """Where a pass keeps each finished batch's answers (``pruning.study.tasks.PassCheckpoint``)."""

    def get(self, index: int) -> BatchAnswers | None: ...

    def put(self, index: int, answers: BatchAnswers) -> None: ...


def shared_answers(
    model: nn.Module,
    requests: Sequence[TokenRequest],
    variants: Sequence[Variant],
    max_length: int,
    batch_size: int,
    progress: Progress = None,
    checkpoint: Checkpoint | None = None,
) -> tuple[dict[Variant, dict[TokenRequest, Answer]], TaskCost]:
    """Each variant's answer to each request, and the pass's counted cost; batches ``checkpoint``
    holds are read from it, and each batch computed is put there as it finishes."""
    n_layers = len(get_blocks(model))
    schedule = plan_schedule(variants, n_layers, reference=False)  # no answer needs the base's logits
    runners = [build_runner(model, step, n_layers) for step in schedule.steps]
    inputs = [(context + continuation)[-(max_length + 1) :][:-1] for context, continuation in requests]
    order = sorted(range(len(requests)), key=lambda i: (-len(inputs[i]), i))  # longest first, as lm-eval
    answers: dict[Variant, dict[TokenRequest, Answer]] = {v: {} for v in variants}
    by_id = {v.id: v for v in variants}
    device = next(model.parameters()).device
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    bar = open_bar("tasks: request batches", len(batches), progress)
    reused, wanted = 0, {v.id for v in variants}
    with torch.inference_mode():
        for index, batch in enumerate(batches):
            found = None if checkpoint is None else checkpoint.get(index)
            if found is not None and not wanted <= found.keys():  # kept by a pass over other variants
                found = None
            reused += found is not None
            if found is None:
                rows = [inputs[i] for i in batch]
                found = _batch_answers(runners, _padded(rows, device), [requests[i] for i in batch], rows)
                if checkpoint is not None:
                    checkpoint.put(index, found)
            for vid in wanted:
                answers[by_id[vid]].update(zip([requests[i] for i in batch], found[vid], strict=True))
            bar.update(1)
    bar.close()
    cost = _cost(model, schedule, variants, n_layers, len(batches) - reused)
    return {v: answers[v] for v in variants}, replace(cost, reused=reused)


def _batch_answers(
    runners: Sequence[Runner],
    ids: torch.Tensor,
    requests: Sequence[TokenRequest],
    rows: Sequence[Sequence[int]],
) -> BatchAnswers:
    """Every scored step's answers to one batch of ``requests`` (``ids``: their input ``rows``
    right-padded, (B, T)), in batch order."""
    states: States = {}
    out: BatchAnswers = {}
    for runner in runners:
        logits = run_step(runner, states, _forward(ids))  # (B, T, V)
        if runner.step.scored:
            out[runner.step.variant.id] = _answers(logits, requests, [len(r) for r in rows])
        for prefix in runner.step.evict:
            states.pop(prefix, None)
    return out


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


def _answers(logits: torch.Tensor, requests: Sequence[TokenRequest], lengths: Sequence[int]) -> list[Answer]:
    """(log-likelihood, greedy) of each request's continuation, from its row of ``logits``."""
    logp = torch.log_softmax(logits.float(), dim=-1)  # (B, T, V)
    out = []
    for row, (request, length) in enumerate(zip(requests, lengths, strict=True)):
        cont = torch.tensor(request[1], dtype=torch.long, device=logits.device)  # (n,)
        span = logp[row, length - len(cont) : length]  # (n, V): the positions predicting cont
        greedy = bool((span.argmax(-1) == cont).all())
        out.append((float(span.gather(1, cont[:, None]).sum()), greedy))
    return out


def _cost(
    model: nn.Module, schedule: Schedule, variants: Sequence[Variant], n_layers: int, batches: int
) -> TaskCost:
    naive = plan_schedule(variants, n_layers, share=False, reference=False)
    weight = head_weight(model)
    shared = forward_cost(schedule.block_passes, schedule.head_passes, weight) * batches
    alone = forward_cost(naive.block_passes, naive.head_passes, weight) * batches
    return TaskCost(shared, alone, batches)
