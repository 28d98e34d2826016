"""Perplexity matches independent computations of each declared protocol."""

from __future__ import annotations

import math

import pytest
import torch

from pruning import load_model, perplexity, remove_layers
from pruning.data.corpora import make_corpus


@pytest.fixture(scope="module")
def lm():
    return load_model("random:tiny-llama")


def _tokens(lm, corpus):
    return lm.tokenizer(corpus.text, add_special_tokens=False)["input_ids"]


def _hf_loss_ppl(model, chunks, first_scored):
    """Independent: Hugging Face's own shifted-label loss, per chunk, -100 masking."""
    nll, count = 0.0, 0
    for chunk in chunks:
        ids = torch.tensor([chunk])
        labels = ids.clone()
        labels[:, :first_scored] = -100
        with torch.inference_mode():
            loss = model(ids, labels=labels).loss.item()
        n = len(chunk) - first_scored
        nll += loss * n
        count += n
    return math.exp(nll / count)


def test_windows_protocol_matches_hf_loss(lm, small_corpus):
    got = perplexity(lm.model, lm.tokenizer, small_corpus, ctx=128, eval_tokens=640)
    tokens = _tokens(lm, small_corpus)
    chunks = [tokens[i * 128 : (i + 1) * 128] for i in range(5)]
    assert got.tokens_scored == 5 * 127 and len(got.window_nll) == 5
    assert got.ppl == pytest.approx(_hf_loss_ppl(lm.model, chunks, 1), rel=1e-5)


def test_llamacpp_protocol_matches_an_independent_second_half_score(lm, small_corpus):
    got = perplexity(lm.model, lm.tokenizer, small_corpus, ctx=128, eval_tokens=512, protocol="llamacpp")
    tokens = _tokens(lm, small_corpus)  # the byte tokenizer adds no BOS: raw chunks
    chunks = [tokens[i * 128 : (i + 1) * 128] for i in range(4)]
    assert got.tokens_scored == 4 * (128 - 1 - 64)
    assert got.ppl == pytest.approx(_hf_loss_ppl(lm.model, chunks, 65), rel=1e-5)


def test_sliding_protocol_matches_the_hf_recipe(lm, small_corpus):
    got = perplexity(
        lm.model, lm.tokenizer, small_corpus, ctx=128, eval_tokens=600, protocol="sliding", stride=64
    )
    ids = torch.tensor([_tokens(lm, small_corpus)[:600]])
    nlls, prev_end, count = [], 0, 0
    for begin in range(0, 600, 64):  # the recipe from the transformers perplexity guide
        end = min(begin + 128, 600)
        trg_len = end - prev_end
        inp = ids[:, begin:end]
        target = inp.clone()
        target[:, :-trg_len] = -100
        with torch.inference_mode():
            loss = lm.model(inp, labels=target).loss
        n = (target[:, 1:] != -100).sum().item()
        nlls.append(loss.item() * n)
        count += n
        prev_end = end
        if end == 600:
            break
    assert got.tokens_scored == count == 599
    assert got.ppl == pytest.approx(math.exp(sum(nlls) / count), rel=1e-5)


def test_batched_equals_unbatched_and_reruns_are_bit_identical(lm, small_corpus):
    one = perplexity(lm.model, lm.tokenizer, small_corpus, ctx=128, batch_size=1)
    four = perplexity(lm.model, lm.tokenizer, small_corpus, ctx=128, batch_size=4)
    again = perplexity(lm.model, lm.tokenizer, small_corpus, ctx=128, batch_size=1)
    assert four.ppl == pytest.approx(one.ppl, rel=1e-6)
    assert again.window_nll == one.window_nll and again.ppl == one.ppl


def test_result_carries_ci_windows_and_provenance(lm, small_corpus):
    r = perplexity(lm.model, lm.tokenizer, small_corpus, ctx=128)
    assert r.ci95[0] < r.ppl < r.ci95[1]
    assert math.isclose(r.nll_sum, sum(r.window_nll)) and r.tokens_scored == sum(r.window_tokens)
    assert r.corpus["sha256"] == small_corpus.sha256 and r.corpus["source"].startswith("file:")
    assert r.protocol.ctx == 128


def test_pruning_changes_perplexity(lm, small_corpus):
    base = perplexity(lm.model, lm.tokenizer, small_corpus, ctx=128)
    pruned = perplexity(remove_layers(lm.model, [1]), lm.tokenizer, small_corpus, ctx=128)
    assert pruned.ppl != base.ppl


def test_ctx_is_capped_at_the_model_maximum(lm, small_corpus):
    r = perplexity(lm.model, lm.tokenizer, small_corpus, ctx=100_000)
    assert r.protocol.ctx == lm.model.config.max_position_embeddings == 256


def test_a_short_corpus_is_a_clear_error(lm):
    short = make_corpus("tiny", "test", "only a few words", "test")
    with pytest.raises(ValueError, match=r"fewer than one window of ctx=128"):
        perplexity(lm.model, lm.tokenizer, short, ctx=128)


def test_bf16_is_close_to_fp32(small_corpus):
    fp32 = load_model("random:tiny-llama")
    bf16 = load_model("random:tiny-llama", dtype="bfloat16")
    a = perplexity(fp32.model, fp32.tokenizer, small_corpus, ctx=128).ppl
    b = perplexity(bf16.model, bf16.tokenizer, small_corpus, ctx=128).ppl
    assert b == pytest.approx(a, rel=0.05)
    assert bf16.fingerprint.dtype == "bfloat16"


def _bos_tokenizer():
    """The byte tokenizer, but adding BOS (id 256) to every encode, as Gemma's does."""
    from tokenizers import processors

    from pruning.models.tokenizers import byte_tokenizer

    tok = byte_tokenizer()
    tok.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="<|endoftext|> $A", special_tokens=[("<|endoftext|>", 256)]
    )
    return tok


def test_windows_follow_the_models_bos_rule_checked_against_the_tokenizers_own_bos(lm, small_corpus):
    tok = _bos_tokenizer()
    text = small_corpus.text.encode("ascii", "ignore").decode()  # one byte, one token
    corpus = make_corpus("t", "test", text, "test")
    got = perplexity(lm.model, tok, corpus, ctx=64, eval_tokens=256)
    # Independent: the tokenizer itself puts BOS before each 63-character piece of text.
    chunks = [tok(text[i * 63 : (i + 1) * 63])["input_ids"] for i in range(4)]
    assert all(c[0] == 256 and len(c) == 64 for c in chunks)
    assert got.tokens_scored == 4 * 63
    assert got.ppl == pytest.approx(_hf_loss_ppl(lm.model, chunks, 1), rel=1e-5)
    without = perplexity(
        lm.model, lm.tokenizer, make_corpus("t", "test", text, "test"), ctx=64, eval_tokens=256
    )
    assert without.ppl != got.ppl


def test_the_perplexity_interval_covers_a_known_perplexity_at_its_stated_rate():
    """Windows of 100 tokens whose mean NLLs are drawn from N(3, 0.3^2): the true perplexity is
    e^3. Over 2000 seeds the 95% interval (exp of the t interval of the mean NLL per token) must
    cover it 94-96% of the time, with the default run's 8 windows and with 32 (the percentile
    bootstrap it replaced covered 88% with 8; a 90% interval, or one over tokens instead of
    windows, lands far outside)."""
    import numpy as np

    from pruning.metrics.perplexity import ppl_interval

    def coverage(windows: int) -> float:
        covered = 0
        for seed in range(2000):
            mean_nll = np.random.default_rng(seed).normal(3.0, 0.3, size=windows)
            low, high = ppl_interval((100 * mean_nll).tolist(), [100] * windows)
            covered += low <= math.exp(3.0) <= high
        return covered / 2000

    assert 0.94 <= coverage(8) <= 0.96
    assert 0.94 <= coverage(32) <= 0.96
    assert all(math.isnan(v) for v in ppl_interval([300.0], [100]))  # one window: no spread seen
