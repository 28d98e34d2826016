"""An offline byte-level tokenizer for models built with random weights.

Random models have no trained vocabulary, and no tokenizer can be downloaded here.
Every UTF-8 byte maps to one id (0..255), so any text round-trips and any vocabulary of
at least 257 entries covers it; id 256 is ``<|endoftext|>`` (BOS and EOS).
"""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

EOS = "<|endoftext|>"
BYTE_VOCAB_SIZE = 257  # 256 bytes + EOS


def byte_tokenizer() -> PreTrainedTokenizerFast:
    """A deterministic byte-level tokenizer: one token per UTF-8 byte, plus EOS."""
    alphabet = pre_tokenizers.ByteLevel.alphabet()  # the 256 printable stand-ins for bytes
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet, key=_byte_of))}
    vocab[EOS] = len(vocab)
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=core, bos_token=EOS, eos_token=EOS, unk_token=None)


def _byte_of(char: str) -> int:
    """The byte value that ByteLevel's printable stand-in ``char`` encodes."""
    return _BYTE_OF_CHAR[char]


def _bytes_to_unicode() -> dict[int, str]:
    # GPT-2's reversible byte -> printable character map (the one ByteLevel uses).
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += list(range(ord("®"), ord("ÿ") + 1))
    mapping: dict[int, str] = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


_BYTE_OF_CHAR = {c: b for b, c in _bytes_to_unicode().items()}
