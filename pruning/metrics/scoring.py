"""Scoring logits against targets: NLL sums, and fidelity to a reference model.

Definitions (all per window, over the scored positions only):
- NLL: -log softmax(logits)[target], accumulated in float64;
- KL: KL(reference || model) = sum_v p_ref(v) * (log p_ref(v) - log p_model(v)) at each
  position, summed (divide by the scored-token count for the mean);
- top-1 agreement: how many positions have the reference's top token (its argmax) as a top token
  of the model too (its logit is the row maximum; at an exact tie for the maximum any tied token
  agrees, where comparing argmaxes would take the first).
Scoring runs in float32 even for bf16 models, so low-precision logits are not rounded twice.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pruning.data.windows import Window
from pruning.metrics.sums import WindowSums


@dataclass(frozen=True)
class BatchScores:
    """Per-window sums of one window batch as tensors: NLL, and KL / top-1 given a reference."""

    nll: torch.Tensor  # (B,) float64
    kl: torch.Tensor | None  # (B,) float64
    top1: torch.Tensor | None  # (B,) int64

    def windows(self, tokens: Sequence[int]) -> list[WindowSums]:
        """One ``WindowSums`` per window of the batch; ``tokens``: each window's scored count."""
        if self.kl is None or self.top1 is None:
            raise ValueError("per-window sums need KL and top-1: score against a reference")
        rows = zip(self.nll.tolist(), self.kl.tolist(), self.top1.tolist(), tokens, strict=True)
        return [WindowSums(float(n), float(k), int(t), int(c)) for n, k, t, c in rows]


def batches(windows: Sequence[Window], batch_size: int) -> Iterator[list[int]]:
    """Indices of consecutive windows of equal length and ``score_from``, ``batch_size`` at most."""
    group: list[int] = []
    for i, window in enumerate(windows):
        if group and (_shape(windows[group[0]]) != _shape(window) or len(group) == batch_size):
            yield group
            group = []
        group.append(i)
    if group:
        yield group


def stack(windows: Sequence[Window], indices: list[int]) -> torch.Tensor:
    """The input ids of ``indices`` as one (B, T) batch."""
    return torch.stack([windows[i].ids for i in indices])


def scored_logits(model: nn.Module, ids: torch.Tensor, score_from: int) -> torch.Tensor:
    """float32 logits (B, T-score_from, V) that predict ``ids[:, score_from:]``.

    Only the positions that are scored go through the LM head (``logits_to_keep``).
    """
    seq = ids.shape[1]
    keep = seq - score_from + 1  # positions score_from-1 .. T-1; the last predicts nothing
    out = model(input_ids=ids, use_cache=False, logits_to_keep=keep)
    logits: torch.Tensor = out.logits[:, :-1].float()
    return logits


@dataclass(frozen=True)
class Reference:
    """The reference model's next-token distributions, prepared once per window batch."""

    probs: torch.Tensor  # (B, n, V) p_ref
    neg_entropy: torch.Tensor  # (B, n) sum_v p_ref log p_ref
    argmax: torch.Tensor  # (B, n)


def make_reference(logits: torch.Tensor) -> Reference:
    """Prepare the reference distributions from its float32 logits (B, n, V)."""
    logprobs = F.log_softmax(logits, dim=-1)
    probs = logprobs.exp()
    return Reference(probs, _rowdot(probs, logprobs), logits.argmax(-1))


def score(logits: torch.Tensor, targets: torch.Tensor, reference: Reference | None) -> BatchScores:
    """Sums per window of NLL, and of KL / top-1 against ``reference`` if given.

    ``logits``: (B, n, V) float32; ``targets``: (B, n). With log p = log_softmax(logits) and
    lse = logit - log p: NLL = -log p[target]; KL(ref || model) = sum p_ref log p_ref -
    (p_ref . logits - lse), because sum_v p_ref = 1 (one row dot product, no (B, n, V) temporary).
    """
    logprobs = F.log_softmax(logits, dim=-1)  # (B, n, V)
    nll = _target_nll(logprobs, targets)  # (B, n)
    if reference is None:
        return BatchScores(nll.sum(1), None, None)
    lse = logits[..., 0] - logprobs[..., 0]  # (B, n) logsumexp of each row
    cross = _rowdot(reference.probs, logits) - lse  # (B, n): sum_v p_ref log p_model
    kl = (reference.neg_entropy - cross).double()  # (B, n)
    same = _top_token_hits(logits, reference.argmax)  # (B, n)
    return BatchScores(nll.sum(1), kl.sum(1), same.long().sum(1))


def token_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """NLL per position, -log softmax(logits)[target] in float64: logits (..., n, V) -> (..., n)."""
    return _target_nll(F.log_softmax(logits.float(), dim=-1), targets)


def _target_nll(logprobs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return -logprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1).double()


def _top_token_hits(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """(B, n) bool: whether ``tokens`` (B, n) attain the row maximum of ``logits`` (B, n, V).

    The same as ``logits.argmax(-1) == tokens`` except at an exact tie for the maximum, and
    several times faster on CPU: a row maximum and a gather instead of torch's argmax (6 ms
    against 34 ms on SmolLM2's (511, 49152) logits, 2 threads), which was half of scoring's time.
    """
    best = logits.amax(-1)  # (B, n)
    return logits.gather(-1, tokens.unsqueeze(-1)).squeeze(-1) == best


def _rowdot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise dot products over the last dim, (B, n, V) x (B, n, V) -> (B, n).

    einsum runs this as a batched matrix product, several times faster on CPU than
    ``(a * b).sum(-1)`` or ``torch.linalg.vecdot``, which materialise the product.
    """
    return torch.einsum("bnv,bnv->bn", a, b)


def self_scores(logits: torch.Tensor, targets: torch.Tensor) -> BatchScores:
    """Scores of the reference against itself: KL exactly 0 and top-1 agreement exactly 1."""
    plain = score(logits, targets, None)
    batch, n = targets.shape
    zeros = torch.zeros(batch, dtype=torch.float64)
    return BatchScores(plain.nll, zeros, torch.full((batch,), n, dtype=torch.long))


def _shape(window: Window) -> tuple[int, int]:
    return int(window.ids.shape[0]), window.score_from
