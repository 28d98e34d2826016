from __future__ import annotations

import torch
import torch.nn.functional as F

from pruning.metrics import scoring
from pruning.metrics.scoring import make_reference, score, self_scores, token_nll
from pruning.models.loading import load_model


def test_kl_top1_and_nll_match_their_definitions():
    gen = torch.Generator().manual_seed(0)
    ref_logits = torch.randn(2, 40, 97, generator=gen) * 3
    logits = ref_logits + torch.randn(2, 40, 97, generator=gen)
    targets = torch.randint(0, 97, (2, 40), generator=gen)
    got = score(logits, targets, make_reference(ref_logits))
    p_ref = ref_logits.log_softmax(-1)
    p = logits.log_softmax(-1)
    kl = (p_ref.exp() * (p_ref - p)).sum(-1).sum(-1).double()  # KL(ref || model), summed per window
    torch.testing.assert_close(got.kl, kl, rtol=1e-5, atol=1e-5)
    nll = -p.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(got.nll, nll.sum(-1).double(), rtol=1e-6, atol=1e-6)
    assert got.top1.tolist() == (logits.argmax(-1) == ref_logits.argmax(-1)).sum(-1).tolist()
    per_token = token_nll(logits, targets)  # the per-position NLL the racing search sums
    torch.testing.assert_close(per_token, nll.double(), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(per_token.sum(-1), got.nll)


def test_reference_against_itself_is_exactly_zero_kl_and_full_agreement():
    logits = torch.randn(1, 10, 7)
    targets = torch.zeros(1, 10, dtype=torch.long)
    own = self_scores(logits, targets)
    assert own.kl.tolist() == [0.0] and own.top1.tolist() == [10]
    by_hand = -torch.log_softmax(logits.double(), -1)[0].gather(-1, targets[0, :, None]).sum()
    torch.testing.assert_close(own.nll, by_hand[None], rtol=1e-6, atol=1e-6)


def test_top1_counts_the_reference_token_when_it_ties_for_the_model_maximum():
    """Without ties top-1 equals argmax equality (above); at an exact tie for the maximum the
    reference's token agrees wherever it stands among the tied ones (argmax takes the first)."""
    ref_logits = torch.tensor([[[0.0, 0.0, 5.0, 0.0], [0.0, 5.0, 0.0, 0.0], [4.0, 0.0, 0.0, 0.0]]])
    logits = torch.tensor([[[0.0, 3.0, 3.0, 0.0], [0.0, 3.0, 3.0, 0.0], [0.0, 3.0, 3.0, 0.0]]])
    targets = torch.zeros(1, 3, dtype=torch.long)
    got = score(logits, targets, make_reference(ref_logits))
    assert got.top1.tolist() == [2]  # tokens 2 and 1 tie for the maximum; token 0 does not
    assert (logits.argmax(-1) == ref_logits.argmax(-1)).sum().item() == 1  # argmax takes token 1 only


def _exact(ref_logits, logits, targets):
    """NLL, KL(ref || model) and top-1 hits per window, in float64 from the definitions."""
    lp_ref, lp = ref_logits.double().log_softmax(-1), logits.double().log_softmax(-1)
    nll = -lp.gather(-1, targets.unsqueeze(-1)).squeeze(-1).sum(-1)
    kl = (lp_ref.exp() * (lp_ref - lp)).sum(-1).sum(-1)
    return nll, kl, (logits.argmax(-1) == ref_logits.argmax(-1)).sum(-1)


def test_chunked_scores_equal_float64_definitions_and_the_fused_head_equals_them(monkeypatch):
    """Chunks of 64 over a vocabulary of 300 (the last chunk shorter): the sums of whole logits
    and of a linear head applied a chunk at a time (bias included) both equal float64."""
    monkeypatch.setattr(scoring, "VOCAB_CHUNK", 64)
    gen = torch.Generator().manual_seed(1)
    hidden, ref_hidden = torch.randn(2, 30, 16, generator=gen), torch.randn(2, 30, 16, generator=gen)
    weight, bias = torch.randn(300, 16, generator=gen), torch.randn(300, generator=gen)
    ref_logits, logits = F.linear(ref_hidden, weight, bias), F.linear(hidden, weight, bias)
    targets = torch.randint(0, 300, (2, 30), generator=gen)
    reference = make_reference(ref_logits)
    assert [p.shape[-1] for p in reference.probs] == [64, 64, 64, 64, 44]
    nll, kl, top1 = _exact(ref_logits, logits, targets)
    fused = scoring.score_hidden(hidden, scoring.Head(weight, bias), targets, reference)
    for got in (score(logits, targets, reference), fused):
        torch.testing.assert_close(got.nll, nll, rtol=1e-7, atol=0)
        torch.testing.assert_close(got.kl, kl, rtol=1e-5, atol=0)
        assert got.top1.tolist() == top1.tolist()
    per_token = scoring.hidden_nll(hidden[0], scoring.Head(weight, bias), targets[0])
    torch.testing.assert_close(per_token.sum(), nll[0], rtol=1e-7, atol=0)


def test_the_head_is_fused_only_where_the_logits_are_exactly_its_output():
    """A plain linear head is found; where the model soft-caps its logits after the head (Gemma 2
    and 3 can), scoring must use the model's own logits, so no head is returned."""
    ids = torch.tensor([[1, 2, 3, 4]])
    plain = load_model("random:tiny-llama").model
    head = scoring.plain_head(plain, ids)
    assert head is not None and head.weight is plain.lm_head.weight
    capped = load_model("random:tiny-gemma3").model
    assert scoring.plain_head(capped, ids) is not None  # final_logit_softcapping is None by default
    capped.config.final_logit_softcapping = 30.0
    assert scoring.plain_head(capped, ids) is None
