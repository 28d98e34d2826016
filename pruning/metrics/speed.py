"""Speed inputs, the timed functions, and the campaigns that time variants side by side.

- prefill: one forward pass, batch 1, over the first ``seq`` real tokens of the corpus, with
  the cache off and only the last position through the LM head (``logits_to_keep=1``), as a
  generation prefill does;
- decode: after an untimed prefill of the same tokens, greedy steps of one token each with
  the KV cache, reported per token.
On CUDA the timed functions synchronise before returning, so the timer sees the kernels finish.

Speed *changes* come from an interleaved campaign (``pruning.metrics.timing``): every round times
every variant and the unpruned model in a fresh random order. A prefill slot is ``burst``
back-to-back passes and keeps the fastest; a decode slot is ``new_tokens`` cached steps from
a copy of the variant's one prefilled cache (``Started``, made once, also for pytest-benchmark's
own decode run) and keeps the fastest step. The analysis is ``pruning.metrics.latency``.
"""

from __future__ import annotations

import copy
import inspect
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from pruning.metrics.timing import Campaign, CampaignSettings, Measure, OnProgress, run_campaign
from pruning.models.variant import BASE

Started = tuple[Any, torch.Tensor]  # a prefilled KV cache and the first greedy token (1, 1)


@dataclass(frozen=True)
class SpeedSettings:
    """What the speed benchmarks time."""

    seq: int = 128
    new_tokens: int = 4  # decode steps per slot (the fastest is kept)
    burst: int = 1  # prefill passes per slot (the fastest is kept)
    campaign: CampaignSettings = field(default_factory=CampaignSettings)
    threads: int | None = None
    long_seq: tuple[int, ...] = ()  # () or (M,): a second prefill campaign at M tokens (``prefill_long``)


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
def start_decode(model: nn.Module, ids: torch.Tensor) -> Started:
    """Untimed: prefill ``ids`` with the cache on; returns (cache, first greedy token (1, 1))."""
    out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
    return _cache_of(out), out.logits[:, -1:].argmax(-1)


@torch.inference_mode()
def decode(model: nn.Module, cache: Any, token: torch.Tensor, new_tokens: int) -> torch.Tensor:
    """Timed: ``new_tokens`` greedy single-token steps through the KV cache; returns the tokens."""
    key = _cache_kwarg(model)
    out_tokens = []
    for _ in range(new_tokens):
        token, cache = _step(model, key, token, cache)
        out_tokens.append(token)
    _sync(token)
    return torch.cat(out_tokens, dim=1)


def _step(model: nn.Module, key: str, token: torch.Tensor, cache: Any) -> tuple[torch.Tensor, Any]:
    """One greedy cached step: the next token (1, 1) and the grown cache."""
    out = model(input_ids=token, use_cache=True, logits_to_keep=1, **{key: cache})
    return out.logits[:, -1:].argmax(-1), _cache_of(out)


def prefill_slot(model: nn.Module, ids: torch.Tensor, burst: int) -> Measure:
    """A campaign slot: ``burst`` back-to-back prefill passes; returns the fastest (seconds)."""

    def measure() -> float:
        return min(_seconds(lambda: prefill(model, ids)) for _ in range(burst))

    return measure


def decode_slot(model: nn.Module, started: Started, new_tokens: int) -> Measure:
    """A campaign slot: ``new_tokens`` cached greedy steps from a fresh copy of the prefilled
    ``started`` (``start_decode``, untimed); returns the fastest step (seconds per token)."""
    cache, token = started

    def measure() -> float:
        return min(decode_steps(model, copy.deepcopy(cache), token, new_tokens))

    return measure


@torch.inference_mode()
def decode_steps(model: nn.Module, cache: Any, token: torch.Tensor, new_tokens: int) -> list[float]:
    """The seconds each of ``new_tokens`` greedy single-token steps took."""
    key = _cache_kwarg(model)
    times = []
    for _ in range(new_tokens):
        start = time.perf_counter()
        token, cache = _step(model, key, token, cache)
        _sync(token)
        times.append(time.perf_counter() - start)
    return times


def time_variants(
    kind: str,
    models: Mapping[str, nn.Module],
    ids: torch.Tensor,
    settings: SpeedSettings,
    on_progress: OnProgress | None = None,
    classes: Mapping[str, str] | None = None,
    started: Mapping[str, Started] | None = None,
) -> Campaign:
    """The interleaved ``kind`` campaign (``prefill``, ``prefill_long`` or ``decode``) over
    ``models`` (variant id -> model), against the unpruned model (id ``base``, which ``models``
    must hold); ``ids`` is the input at the kind's length; ``classes`` (variant id -> work class,
    ``pruning.models.work``) pools the variants that run the same work; ``started`` (decode):
    each variant's prefilled cache from ``ids``, made here for the variants it lacks."""
    if kind in ("prefill", "prefill_long"):
        measures = {name: prefill_slot(m, ids, settings.burst) for name, m in models.items()}
    elif kind == "decode":
        given = started or {}
        measures = {
            name: decode_slot(m, given[name] if name in given else start_decode(m, ids), settings.new_tokens)
            for name, m in models.items()
        }
    else:
        raise ValueError(f"unknown timing kind {kind!r}; expected prefill, prefill_long or decode")
    return run_campaign(kind, measures, BASE.id, settings.campaign, on_progress, classes=classes)


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
