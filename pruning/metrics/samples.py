"""Sample text: can the pruned model still speak?

Each variant continues the same fixed prompts greedily, up to ``new_tokens`` new tokens
(fewer where it emits its end-of-sequence token), through the KV cache (transformers'
``generate``, all prompts in one left-padded batch). Prompts are encoded as the tokenizer
encodes plain text, special tokens included, so a model that expects its BOS (Gemma) gets it.

Prompts come from the corpus's validation split, never the evaluation text: the first words of
its first paragraphs that are not headings and are long enough to start a sentence
(``prompts_from_text``), or from a user's file, one prompt per line (``prompts_from_file``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

PROMPT_WORDS = 16  # words of a paragraph that make a prompt
MIN_PARAGRAPH_WORDS = 40  # shorter lines (headings, captions) give no prompt


@dataclass(frozen=True)
class SampleSettings:
    """``--prune-samples N`` and ``--prune-samples-file``: how many prompts, from where."""

    count: int = 0  # 0: off
    file: Path | None = None  # one prompt per line; None: the corpus's validation split
    new_tokens: int = 32


@dataclass(frozen=True)
class Samples:
    """The prompts and each variant's continuations, in prompt order."""

    prompts: tuple[str, ...]
    new_tokens: int
    texts: dict[str, tuple[str, ...]]  # variant id -> one continuation per prompt

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for ``results.json``."""
        texts = {vid: list(t) for vid, t in self.texts.items()}
        return {"prompts": list(self.prompts), "new_tokens": self.new_tokens, "texts": texts}


class PromptError(ValueError):
    """Prompts that cannot be had: too few paragraphs, or an unreadable or short file."""


def prompts_from_text(text: str, count: int) -> tuple[str, ...]:
    """The first ``PROMPT_WORDS`` words of the first ``count`` paragraphs of ``text`` that are
    not headings (WikiText's `` = Title = ``) and have ``MIN_PARAGRAPH_WORDS`` words or more."""
    found = []
    for line in text.splitlines():
        words = line.split()
        if len(words) < MIN_PARAGRAPH_WORDS or line.strip().startswith("="):
            continue
        found.append(" ".join(words[:PROMPT_WORDS]))
        if len(found) == count:
            return tuple(found)
    raise PromptError(f"the text has {len(found)} paragraphs to prompt with; {count} were asked for")


def prompts_from_file(path: Path, count: int | None) -> tuple[str, ...]:
    """The non-empty lines of ``path``: the first ``count``, or all of them when None."""
    try:
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise PromptError(f"cannot read prompts from {str(path)!r}: {exc}") from None
    if not lines or (count is not None and len(lines) < count):
        raise PromptError(
            f"{str(path)!r} has {len(lines)} non-empty lines; {count or 1} prompts were asked for"
        )
    return tuple(lines if count is None else lines[:count])


@torch.inference_mode()
def continue_greedily(
    model: nn.Module, tokenizer: Any, prompts: Sequence[str], new_tokens: int, device: str
) -> tuple[str, ...]:
    """Each prompt's greedy continuation by ``model``: up to ``new_tokens`` tokens, ended at the
    end-of-sequence token, decoded to text. The prompts run as one batch, left-padded with an
    attention mask (each keeps its own positions), through ``generate`` with the KV cache: a
    decode step costs about as much for a few prompts as for one, its weights being read once."""
    encoded = [tokenizer(p)["input_ids"] for p in prompts]
    width = max(len(e) for e in encoded)
    eos = getattr(tokenizer, "eos_token_id", None)
    pad = (
        tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (eos if isinstance(eos, int) else 0)
    )
    ids = torch.tensor([[pad] * (width - len(e)) + e for e in encoded], device=device)  # (N, T)
    mask = torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in encoded], device=device)  # (N, T)
    generate = cast(Any, model).generate  # transformers' GenerationMixin
    out = generate(
        input_ids=ids, attention_mask=mask, max_new_tokens=new_tokens, do_sample=False, pad_token_id=pad
    )  # (N, T + up to new_tokens)
    texts = []
    for row in out[:, width:].tolist():
        if isinstance(eos, int) and eos in row:
            row = row[: row.index(eos)]
        texts.append(str(tokenizer.decode(row, skip_special_tokens=True)))
    return tuple(texts)
