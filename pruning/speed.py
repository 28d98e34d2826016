"""Speed inputs and the timed functions.

- prefill: one forward pass, batch 1, over the first ``seq`` real tokens of the corpus, with
  the cache off and only the last position through the LM head (``logits_to_keep=1``), as a
  generation prefill does;
- decode: after an untimed prefill of the same tokens, ``new_tokens`` greedy steps of one
  token each with the KV cache; the reported figure is time / ``new_tokens`` (ms per token).
On CUDA both functions synchronise before returning, so the timer sees the kernels finish.

Speed *changes* come from ``paired_ratio``: each round times the variant and the unpruned model
back to back (alternating which goes first), and the median of the per-round ratios is
reported. Machine drift over a session (other load, clocks) then cancels out of the ratio,
where comparing medians taken minutes apart does not.
"""

from __future__ import annotations

import inspect
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class SpeedSettings:
    """What the speed benchmarks time."""

    seq: int = 128
    new_tokens: int = 16
    rounds: int = 5
    warmup_rounds: int = 1
    threads: int | None = None


def speed_tokens(tokenizer: Any, text: str, seq: int) -> torch.Tensor:
    """The first ``seq`` tokens of ``text`` as a (1, seq) batch; ``ValueError`` if too short."""
    ids = tokenizer(text[: seq * 64], add_special_tokens=False)["input_ids"][:seq]
    if len(ids) < seq:
        raise ValueError(f"the corpus has only {len(ids)} tokens; the speed input needs seq={seq}")
    return torch.tensor([ids], dtype=torch.long)  # (1, seq)


@torch.inference_mode()
def prefill(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """One timed prefill forward pass; returns the last position's logits (1, 1, V)."""
    logits: torch.Tensor = model(input_ids=ids, use_cache=False, logits_to_keep=1).logits
    _sync(ids)
    return logits


@torch.inference_mode()
def start_decode(model: nn.Module, ids: torch.Tensor) -> tuple[Any, torch.Tensor]:
    """Untimed: prefill ``ids`` with the cache on; returns (cache, first greedy token (1, 1))."""
    out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
    return _cache_of(out), out.logits[:, -1:].argmax(-1)


@torch.inference_mode()
def decode(model: nn.Module, cache: Any, token: torch.Tensor, new_tokens: int) -> torch.Tensor:
    """Timed: ``new_tokens`` greedy single-token steps through the KV cache; returns the tokens."""
    key = _cache_kwarg(model)
    out_tokens = []
    for _ in range(new_tokens):
        out = model(input_ids=token, use_cache=True, logits_to_keep=1, **{key: cache})
        cache = _cache_of(out)
        token = out.logits[:, -1:].argmax(-1)  # (1, 1)
        out_tokens.append(token)
    _sync(token)
    return torch.cat(out_tokens, dim=1)


def paired_ratio(variant: Callable[[], object], reference: Callable[[], object], rounds: int) -> float:
    """Median over ``rounds`` of time(variant) / time(reference), timed back to back."""
    ratios = []
    for r in range(rounds):
        pair = (variant, reference) if r % 2 == 0 else (reference, variant)
        first, second = (_seconds(fn) for fn in pair)
        t_variant, t_reference = (first, second) if r % 2 == 0 else (second, first)
        ratios.append(t_variant / t_reference)
    return statistics.median(ratios)


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _cache_kwarg(model: nn.Module) -> str:
    # transformers 5.x renamed ``past_key_values`` to ``cache`` in the forward signature.
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _cache_of(out: Any) -> Any:
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


def _sync(tensor: torch.Tensor) -> None:
    if tensor.device.type == "cuda":
        torch.cuda.synchronize(tensor.device)
