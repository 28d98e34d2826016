"""Step models: the model that runs one schedule step, resuming from a shared hidden state.

A resumed step's model is the model's own code (embeddings, masks, rotary tables, Gemma 3's
sliding-window masks are computed by it as usual) whose block list is a ``Resume``
placeholder that returns the cached state, followed by the step's remaining blocks. Nothing
of attention is reimplemented. Forward hooks capture the block outputs later steps resume from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from torch import nn

from pruning.engine.options import EngineOptions
from pruning.engine.schedule import Prefix, Step
from pruning.models.sublayers import remove_branches
from pruning.models.surgery import get_blocks, rebuild_blocks, remove_layers, structural_copy
from pruning.models.variant import ATTN, MLP, decode_kept

T = TypeVar("T")
States = dict[Prefix, Any]  # kept-block prefix -> the hidden state after its last block


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


def build_runner(model: nn.Module, step: Step, n_layers: int) -> Runner:
    """The model that runs ``step``, sharing ``model``'s weights; it captures the step's states.

    ``step.run`` holds kept-block codes (``pruning.models.variant.kept_code``): a block that lost
    a branch is copied and loses it here, in the copy only.
    """
    run = [decode_kept(code) for code in step.run]  # (block, removed branch)
    if not step.resume:  # from the embeddings: the plain pruned model
        attn, mlp = ([i for i, r in run if r == kind] for kind in (ATTN, MLP))
        ran = {i for i, _ in run}
        pruned = remove_layers(model, [i for i in range(n_layers) if i not in ran], attn, mlp)
        captured: dict[int, Any] = {}
        _hook_captures(get_blocks(pruned), step.capture, 0, captured)
        return Runner(step, pruned, None, captured)
    partial = structural_copy(model, share_weights=True, blocks=[i for i, _ in run])
    resume = Resume()
    sources = [decode_kept(step.resume[-1])[0], *(i for i, _ in run)]  # the placeholder takes
    rebuild_blocks(partial, [resume, *get_blocks(partial)], sources, n_layers)  # its prefix's config
    blocks = get_blocks(partial)
    attn, mlp = ([k + 1 for k, (_, r) in enumerate(run) if r == kind] for kind in (ATTN, MLP))
    if attn or mlp:
        remove_branches(partial, blocks, attn, mlp)
    captured = {}
    _hook_captures(blocks, step.capture, 1, captured)
    return Runner(step, partial, resume, captured)


def run_step(runner: Runner, states: States, forward: Callable[[nn.Module], T]) -> T:
    """``forward(runner.model)`` resumed from its prefix's state in ``states``; the states it
    captured are added to ``states`` for the steps that resume from them."""
    step = runner.step
    if runner.resume is not None:
        runner.resume.state = states[step.resume]
    try:
        out = forward(runner.model)
    finally:
        if runner.resume is not None:
            runner.resume.state = None
    for j, output in runner.captured.items():
        states[step.resume + step.run[: j + 1]] = output
    runner.captured.clear()
    return out


def pass_through_head(model: nn.Module) -> None:
    """Replace the model's LM head by an identity, so its "logits" are the final hidden states
    (scored a vocabulary chunk at a time, ``pruning.metrics.scoring.score_hidden``)."""
    head = cast(Any, model).get_output_embeddings()
    for parent in model.modules():
        for name, child in parent.named_children():
            if child is head:
                setattr(parent, name, nn.Identity())


def max_states(model: nn.Module, positions: int, options: EngineOptions) -> int:
    """How many hidden states of ``positions`` positions fit in ``options.max_state_mb``."""
    width = int(getattr(model.config, "hidden_size", 0)) or 1
    state_bytes = positions * width * next(model.parameters()).element_size()
    return int(options.max_state_mb * 2**20 // max(state_bytes, 1))


def _hook_captures(blocks: nn.ModuleList, capture: tuple[int, ...], offset: int, out: dict[int, Any]) -> None:
    for j in capture:

        def hook(_m: nn.Module, _a: Any, output: Any, j: int = j) -> None:
            out[j] = output

        blocks[j + offset].register_forward_hook(hook)
