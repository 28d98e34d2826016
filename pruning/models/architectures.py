"""Registry of architectures built from a config with seeded random weights (``random:NAME``).

GPT-2 weights cannot be downloaded here, but its architecture can be built exactly, which
is all that parameter counts and speed measurements need. The ``tiny-*`` entries cover one
model per decoder family so that surgery tests run in milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from transformers import (
    FalconConfig,
    Gemma3TextConfig,
    GPT2Config,
    GPTNeoXConfig,
    LlamaConfig,
    MistralConfig,
    OPTConfig,
    Phi3Config,
    PretrainedConfig,
    Qwen2Config,
)

from pruning.common.registry import Registry
from pruning.models.tokenizers import BYTE_VOCAB_SIZE

ARCHITECTURES: Registry[Callable[[], PretrainedConfig]] = Registry("random architecture")

# Tiny models share these sizes: 4 blocks, width 64, a vocabulary that covers the byte tokenizer.
_LAYERS, _WIDTH, _HEADS, _MAX_POS = 4, 64, 4, 256
_TINY_VOCAB = 320
_EOS = BYTE_VOCAB_SIZE - 1


def _tokens() -> dict[str, Any]:
    """The vocabulary and special ids every tiny model shares (the byte tokenizer's)."""
    return {"vocab_size": _TINY_VOCAB, "bos_token_id": _EOS, "eos_token_id": _EOS}


def _tiny(config: Callable[..., PretrainedConfig], **family: Any) -> PretrainedConfig:
    """A tiny config with the shared sizes; ``family``: the settings its family names its own way."""
    return config(
        num_hidden_layers=_LAYERS,
        hidden_size=_WIDTH,
        num_attention_heads=_HEADS,
        max_position_embeddings=_MAX_POS,
        **_tokens(),
        **family,
    )


def _llama_like(config: Callable[..., PretrainedConfig], kv_heads: int, **family: Any) -> PretrainedConfig:
    """A tiny config of a Llama-style family: an MLP twice the width, ``kv_heads`` KV heads."""
    return _tiny(config, intermediate_size=2 * _WIDTH, num_key_value_heads=kv_heads, **family)


@ARCHITECTURES.register("distilgpt2")
def distilgpt2() -> PretrainedConfig:
    """distilgpt2: GPT-2 small with 6 blocks (81.91 M parameters, tied head counted once)."""
    return GPT2Config(n_layer=6, n_embd=768, n_head=12, n_positions=1024, vocab_size=50257)


@ARCHITECTURES.register("gpt2")
def gpt2() -> PretrainedConfig:
    """gpt2 (small): 12 blocks, 124.44 M parameters."""
    return GPT2Config(n_layer=12, n_embd=768, n_head=12, n_positions=1024, vocab_size=50257)


@ARCHITECTURES.register("tiny-gpt2")
def tiny_gpt2() -> PretrainedConfig:
    return GPT2Config(
        n_layer=4,
        n_embd=64,
        n_head=4,
        n_positions=256,
        **_tokens(),
    )


@ARCHITECTURES.register("tiny-llama")
def tiny_llama() -> PretrainedConfig:
    return _llama_like(LlamaConfig, 2, tie_word_embeddings=True)


@ARCHITECTURES.register("tiny-mistral")
def tiny_mistral() -> PretrainedConfig:
    return _llama_like(MistralConfig, 2, sliding_window=None)


@ARCHITECTURES.register("tiny-qwen2")
def tiny_qwen2() -> PretrainedConfig:
    return _llama_like(Qwen2Config, 2, use_sliding_window=False)


@ARCHITECTURES.register("tiny-phi3")
def tiny_phi3() -> PretrainedConfig:
    return _llama_like(Phi3Config, _HEADS, pad_token_id=0)


@ARCHITECTURES.register("tiny-gemma3")
def tiny_gemma3() -> PretrainedConfig:
    # Alternating sliding/full attention with a window shorter than test inputs, so a
    # wrong per-layer mask after surgery changes the logits.
    return _llama_like(
        Gemma3TextConfig,
        2,
        head_dim=16,
        sliding_window=8,
        layer_types=["sliding_attention", "full_attention"] * (_LAYERS // 2),
    )


@ARCHITECTURES.register("tiny-opt")
def tiny_opt() -> PretrainedConfig:
    return _tiny(OPTConfig, ffn_dim=128, word_embed_proj_dim=64, pad_token_id=1)


@ARCHITECTURES.register("tiny-gptneox")
def tiny_gptneox() -> PretrainedConfig:
    return _tiny(GPTNeoXConfig, intermediate_size=128)


@ARCHITECTURES.register("tiny-falcon")
def tiny_falcon() -> PretrainedConfig:
    return _tiny(FalconConfig, new_decoder_architecture=False, multi_query=True, alibi=False)
