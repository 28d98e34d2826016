from __future__ import annotations

import torch

from pruning.metrics.scoring import make_reference, score, self_scores, token_nll


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
    assert own.nll.tolist() == score(logits, targets, None).nll.tolist()


def test_top1_counts_the_reference_token_when_it_ties_for_the_model_maximum():
    """Without ties top-1 equals argmax equality (above); at an exact tie for the maximum the
    reference's token agrees wherever it stands among the tied ones (argmax takes the first)."""
    ref_logits = torch.tensor([[[0.0, 0.0, 5.0, 0.0], [0.0, 5.0, 0.0, 0.0], [4.0, 0.0, 0.0, 0.0]]])
    logits = torch.tensor([[[0.0, 3.0, 3.0, 0.0], [0.0, 3.0, 3.0, 0.0], [0.0, 3.0, 3.0, 0.0]]])
    targets = torch.zeros(1, 3, dtype=torch.long)
    got = score(logits, targets, make_reference(ref_logits))
    assert got.top1.tolist() == [2]  # tokens 2 and 1 tie for the maximum; token 0 does not
    assert (logits.argmax(-1) == ref_logits.argmax(-1)).sum().item() == 1  # argmax takes token 1 only
