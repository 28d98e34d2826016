from __future__ import annotations

import pytest

from pruning import count_parameters, load_model, remove_layers

# The original study's parameter column for distilgpt2 (millions, 2 decimals).
STUDY = {6: 81.91, 5: 74.82, 4: 67.74, 3: 60.65}


@pytest.fixture(scope="module")
def distilgpt2():
    return load_model("random:distilgpt2").model


@pytest.mark.parametrize("removed", [0, 1, 2, 3])
def test_distilgpt2_reproduces_the_study_parameter_column(distilgpt2, removed):
    pruned = remove_layers(distilgpt2, range(removed))
    assert round(count_parameters(pruned) / 1e6, 2) == STUDY[6 - removed]


def test_gpt2_small_has_its_published_count():
    assert count_parameters(load_model("random:gpt2").model) == 124_439_808


def test_tied_head_is_counted_once_and_excluded_as_embedding(distilgpt2):
    assert distilgpt2.lm_head.weight is distilgpt2.transformer.wte.weight
    total = count_parameters(distilgpt2)
    embeddings = 50257 * 768 + 1024 * 768  # token + position embeddings
    assert count_parameters(distilgpt2, non_embedding=True) == total - embeddings
    by_hand = sum(p.numel() for p in distilgpt2.parameters())  # torch dedups tied parameters
    assert total == by_hand
