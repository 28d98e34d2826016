"""Perplexity under a declared protocol (see ``pruning.data.windows`` for the exact definitions).

ppl = exp(sum of window NLLs / sum of scored tokens). Windows are batched; NLLs are summed in
float64, so batched and unbatched runs agree to ~1e-7 relative and reruns are bit-identical.

The 95% interval (``ppl_interval``) is exp of the t interval of the mean NLL per token over
windows (``pruning.metrics.intervals.ratio_t``). A percentile bootstrap over the default run's
8 windows covered the truth only ~88% of the time (too few windows for it); the t interval
covers at its stated rate (``tests/test_perplexity.py``, ``docs/results/paired-coverage``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from pruning.data.corpora import Corpus
from pruning.data.windows import EvalProtocol, Window, build_windows
from pruning.metrics.intervals import ratio_t
from pruning.metrics.scoring import batches, score, scored_logits, stack


@dataclass(frozen=True)
class PerplexityResult:
    """Perplexity with its per-window NLLs, CI and provenance."""

    ppl: float
    nll_sum: float
    tokens_scored: int
    window_nll: tuple[float, ...]
    window_tokens: tuple[int, ...]
    ci95: tuple[float, float]
    protocol: EvalProtocol
    corpus: dict[str, str]


def perplexity(
    model: nn.Module,
    tokenizer: Any,
    corpus: Corpus,
    ctx: int = 512,
    eval_tokens: int | None = None,
    protocol: str = "windows",
    stride: int | None = None,
    batch_size: int = 4,
    progress: bool | None = None,
    selection: str = "first",
) -> PerplexityResult:
    """Perplexity of ``model`` on ``corpus`` under ``protocol``, on the windows ``selection``
    takes (``first`` or ``spread``, see ``pruning.data.windows``).

    ``ctx`` is capped at the model's maximum length. ``progress=None`` shows a bar only on a
    terminal.
    """
    proto = EvalProtocol(protocol, ctx, eval_tokens, stride, selection).capped(max_length(model))
    windows = prepare_windows(tokenizer, corpus.text, proto)
    nll = window_nlls(model, windows, batch_size, progress)
    return make_result(nll, [w.scored for w in windows], proto, corpus.describe())


def prepare_windows(tokenizer: Any, text: str, protocol: EvalProtocol) -> list[Window]:
    """Tokenize ``text`` without special tokens and cut it by ``protocol``."""
    tokens = tokenize(tokenizer, text)
    return build_windows(tokens, protocol, bos_id=bos_if_asked(tokenizer))


def tokenize(tokenizer: Any, text: str) -> list[int]:
    """``tokenizer(text, add_special_tokens=False)`` input ids as a list."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return list(ids)


def bos_if_asked(tokenizer: Any) -> int | None:
    """The BOS id if the tokenizer adds one to a plain encode, else None (llama.cpp's rule)."""
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return None
    ids = tokenizer("a", add_special_tokens=True)["input_ids"]
    return int(bos) if ids and ids[0] == bos else None


def max_length(model: nn.Module) -> int | None:
    """The model's maximum sequence length from its config, if it declares one."""
    config = getattr(model, "config", None)
    value = getattr(config, "max_position_embeddings", None)
    return int(value) if isinstance(value, int) and value > 0 else None


@torch.inference_mode()
def window_nlls(
    model: nn.Module, windows: Sequence[Window], batch_size: int, progress: bool | None = None
) -> list[float]:
    """The NLL sum of every window, in window order."""
    if batch_size < 1:
        raise ValueError(f"batch_size {batch_size!r} must be an int >= 1")
    out = [0.0] * len(windows)
    device = next(model.parameters()).device
    bar = tqdm(total=len(windows), desc="perplexity", unit="win", disable=_disabled(progress))
    for group in batches(windows, batch_size):
        ids = stack(windows, group).to(device)  # (B, T)
        start = windows[group[0]].score_from
        scores = score(scored_logits(model, ids, start), ids[:, start:], None)
        for i, value in zip(group, scores.nll.tolist(), strict=True):
            out[i] = float(value)
        bar.update(len(group))
    bar.close()
    return out


def make_result(
    window_nll: Sequence[float], window_tokens: Sequence[int], protocol: EvalProtocol, corpus: dict[str, str]
) -> PerplexityResult:
    """Aggregate per-window NLL sums into a ``PerplexityResult`` with its 95% interval."""
    nll_sum = math.fsum(window_nll)
    tokens = int(sum(window_tokens))
    return PerplexityResult(
        math.exp(nll_sum / tokens),
        nll_sum,
        tokens,
        tuple(window_nll),
        tuple(window_tokens),
        ppl_interval(window_nll, window_tokens),
        protocol,
        corpus,
    )


def ppl_interval(window_nll: Sequence[float], window_tokens: Sequence[int]) -> tuple[float, float]:
    """95% interval of the perplexity: exp of the t interval of the mean NLL per token over
    windows; (nan, nan) from a single window, where no spread between windows is seen."""
    if len(window_nll) < 2:
        return math.nan, math.nan
    low, high = ratio_t(window_nll, window_tokens)
    return math.exp(low), math.exp(high)


def _disabled(progress: bool | None) -> bool | None:
    # tqdm: disable=None hides the bar when stderr is not a terminal.
    return None if progress is None else not progress
