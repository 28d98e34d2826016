"""Evaluation protocols: how a token stream is cut into scored windows.

Every protocol turns the token ids of a corpus into a list of ``Window``s. A window is a
sequence of input ids scored from position ``score_from`` on: the logits at positions
``score_from-1 .. T-2`` predict the tokens at ``score_from .. T-1``.

The BOS rule is the model's own: ``bos_id`` is the token the tokenizer puts before a plain
encode (``pruning.metrics.perplexity.bos_if_asked``), or None where it adds none (SmolLM2, GPT-2).
Every protocol follows it, because a model trained to see BOS first is far more perplexed
without it (Gemma: several times).

- ``windows`` (default): consecutive, non-overlapping windows. Without BOS a
  window is ``ctx`` corpus tokens and is its own labels, so positions 1..ctx-1 are scored
  (ctx-1 tokens, the first token only serves as context). With BOS a window is BOS followed
  by the next ctx-1 corpus tokens, and all ctx-1 of them are scored. Either way ctx-1 tokens
  a window; ``eval_tokens // ctx`` windows are used (all when ``eval_tokens`` is None).
- ``sliding``: the Hugging Face "perplexity of fixed-length models" sliding window. Windows
  start every ``stride`` corpus tokens and hold up to ``ctx`` tokens (BOS included, where the
  model has one); each scores only the tokens no earlier window scored, so every token is
  scored once (without BOS: every token but the first), with up to ctx-1 tokens of context.
  Only the first ``eval_tokens`` corpus tokens are used.
- ``llamacpp``: llama.cpp's ``llama-perplexity`` rule. Tokens get a leading BOS where the
  tokenizer asks for one; chunks of ``ctx`` tokens from the start; where BOS is used, each
  chunk's first token is replaced by BOS; only the second half is scored: the logits at
  positions ctx/2 .. ctx-2 predict tokens ctx/2+1 .. ctx-1 (ctx-1-ctx/2 tokens a chunk).
  ``eval_tokens // ctx`` chunks are used.

Which windows are scored when ``eval_tokens`` holds fewer than the text (``selection``):

- ``spread`` (the suite's default, ``--prune-windows spread``): the text is cut into all its
  windows (m of them, by the protocol's own rule) and into k = ``eval_tokens // ctx`` equal
  stretches of them (stretch j holds windows ``floor(j m / k)`` .. ``floor((j + 1) m / k) - 1``);
  one window is taken from each stretch, at a position drawn from sha256 of the declared seed
  and j (``pruning.data.protocols.spread_indices``). The seed is fixed, so every run scores
  the same windows. Windows read this way come from k places across the whole text, not from one
  or two articles, and the intervals over them hold their stated rate for the corpus
  (``docs/results/paired-coverage``: a drawn position in each stretch, not the middle one, is
  what keeps the t intervals at 95%; evenly spaced windows make them conservative).
- ``first``: the first k windows, the prefix of the text that papers and tools usually score.

The ``sliding`` protocol reads one contiguous stretch (each window scores what the previous did
not), so it is always ``first``. Every window records ``start``: the index, in the corpus's
token ids (without BOS), of its first corpus token.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pruning.data.protocols import PROTOCOLS, SELECTIONS, spread_indices


@dataclass(frozen=True)
class EvalProtocol:
    """An evaluation protocol with its parameters (validated on construction)."""

    name: str = "windows"
    ctx: int = 512
    eval_tokens: int | None = None
    stride: int | None = None  # sliding only; default ctx // 2
    selection: str = "first"  # which windows eval_tokens takes: spread or first (module docstring)

    def __post_init__(self) -> None:
        if self.name not in PROTOCOLS:
            raise ValueError(f"unknown protocol {self.name!r}; expected one of {', '.join(PROTOCOLS)}")
        if self.selection not in SELECTIONS:
            raise ValueError(
                f"unknown window selection {self.selection!r}; expected one of {', '.join(SELECTIONS)}"
            )
        if self.selection == "spread" and self.name == "sliding":
            raise ValueError(
                "the sliding protocol reads one contiguous stretch; expected window selection 'first' "
                "(spread needs the windows or llamacpp protocol)"
            )
        if self.ctx < 2:
            raise ValueError(f"ctx {self.ctx!r} is too small; expected an int >= 2")
        if self.eval_tokens is not None and self.eval_tokens < self.ctx:
            raise ValueError(
                f"eval_tokens {self.eval_tokens!r} is smaller than ctx {self.ctx}; "
                f"expected eval_tokens >= ctx or None (all tokens)"
            )
        if self.stride is not None and (self.name != "sliding" or not 0 < self.stride < self.ctx):
            raise ValueError(
                f"stride {self.stride!r} is only for the sliding protocol and must lie in [1, {self.ctx - 1}]"
            )

    def capped(self, max_ctx: int | None) -> EvalProtocol:
        """The same protocol with ``ctx`` capped at the model's maximum length."""
        if max_ctx is None or self.ctx <= max_ctx:
            return self
        stride = None if self.stride is None else min(self.stride, max_ctx - 1)
        return EvalProtocol(self.name, max_ctx, self.eval_tokens, stride, self.selection)

    def describe(self) -> dict[str, object]:
        """Plain dict for reports and fingerprints."""
        return dict(vars(self))


@dataclass(frozen=True)
class Window:
    """Input ids (T,) scored at positions ``score_from`` .. T-1; ``start`` is the corpus token
    index of its first corpus token (its BOS, where it has one, is not a corpus token)."""

    ids: torch.Tensor  # (T,) int64
    score_from: int
    start: int = 0

    @property
    def scored(self) -> int:
        """How many tokens this window scores."""
        return int(self.ids.shape[0]) - self.score_from


class CorpusTooShortError(ValueError):
    """The corpus does not fill a single window."""


def build_windows(tokens: list[int], protocol: EvalProtocol, bos_id: int | None = None) -> list[Window]:
    """Cut ``tokens`` into the windows of ``protocol`` under the BOS rule ``bos_id``."""
    if protocol.name == "sliding":
        windows = _sliding(tokens, protocol, bos_id)
    elif protocol.name == "llamacpp":
        windows = _llamacpp(tokens, protocol, bos_id)
    else:
        windows = _windows(tokens, protocol, bos_id)
    if not windows:
        raise CorpusTooShortError(
            f"the corpus has {len(tokens)} tokens, fewer than one window of ctx={protocol.ctx}; "
            f"expected at least {protocol.ctx} tokens"
        )
    return windows


def _picked(available: int, protocol: EvalProtocol) -> list[int]:
    """The indices of the windows (of ``available``) that ``protocol`` scores."""
    count = (
        available if protocol.eval_tokens is None else min(available, protocol.eval_tokens // protocol.ctx)
    )
    if protocol.selection == "spread":
        return spread_indices(available, count)
    return list(range(count))


def _windows(tokens: list[int], protocol: EvalProtocol, bos_id: int | None) -> list[Window]:
    if bos_id is None:  # ctx corpus tokens; the first is context only
        span, prefix = protocol.ctx, []
    else:  # BOS + ctx-1 corpus tokens, all scored
        span, prefix = protocol.ctx - 1, [bos_id]
    out = []
    for i in _picked(len(tokens) // span, protocol):
        chunk = prefix + list(tokens[i * span : (i + 1) * span])
        out.append(Window(torch.tensor(chunk, dtype=torch.long), 1, i * span))
    return out


def _llamacpp(tokens: list[int], protocol: EvalProtocol, bos_id: int | None) -> list[Window]:
    ctx = protocol.ctx
    if bos_id is not None:
        tokens = [bos_id, *tokens]  # llama.cpp tokenizes the whole text with its BOS
    out = []
    for i in _picked(len(tokens) // ctx, protocol):
        chunk = list(tokens[i * ctx : (i + 1) * ctx])
        if bos_id is not None:
            chunk[0] = bos_id  # in place of stream token i*ctx (corpus token i*ctx - 1)
        out.append(Window(torch.tensor(chunk, dtype=torch.long), ctx // 2 + 1, i * ctx))
    return out


def _sliding(tokens: list[int], protocol: EvalProtocol, bos_id: int | None) -> list[Window]:
    prefix = [] if bos_id is None else [bos_id]
    span = protocol.ctx - len(prefix)  # corpus tokens a window holds
    stride = min(protocol.stride or protocol.ctx // 2, span)
    n = len(tokens) if protocol.eval_tokens is None else min(len(tokens), protocol.eval_tokens)
    if n < span:
        return []
    out, prev_end = [], 0
    for begin in range(0, n, stride):
        end = min(begin + span, n)
        target_len = end - prev_end  # corpus tokens no earlier window scored
        ids = torch.tensor(prefix + tokens[begin:end], dtype=torch.long)
        out.append(Window(ids, max(1, len(prefix) + (end - begin) - target_len), begin))
        prev_end = end
        if end == n:
            break
    return out
