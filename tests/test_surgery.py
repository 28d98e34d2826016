"""Layer surgery is correct on every decoder family transformers can build small."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from pruning import count_parameters, load_model, remove_layers
from pruning.models.surgery import find_block_path, get_blocks
from pruning.models.variant import normalize_drop

FAMILIES = [
    "tiny-gpt2",
    "tiny-llama",
    "tiny-mistral",
    "tiny-qwen2",
    "tiny-phi3",
    "tiny-gemma3",
    "tiny-opt",
    "tiny-gptneox",
    "tiny-falcon",
]
DROP = [1, -1]  # a middle block and the last one (negative index)
IDS = torch.tensor([[5, 80, 17, 256, 99, 3, 44, 71, 12, 200, 9, 31, 77, 150, 2, 64, 8, 19]])  # (1, 18)


@pytest.fixture(scope="module", params=FAMILIES)
def lm(request):
    return load_model(f"random:{request.param}")


def _fresh_with_kept_blocks(model, keep):
    """An independently built model with len(keep) layers and the kept blocks' weights."""
    config = type(model.config).from_dict(model.config.to_dict())
    config.num_hidden_layers = len(keep)
    if getattr(config, "layer_types", None) is not None:
        config.layer_types = [model.config.layer_types[i] for i in keep]
    fresh = AutoModelForCausalLM.from_config(config).eval()
    state = {}
    path = find_block_path(model)
    for name, tensor in model.state_dict().items():
        if name.startswith(path + "."):
            index, rest = name[len(path) + 1 :].split(".", 1)
            if int(index) not in keep:
                continue
            name = f"{path}.{keep.index(int(index))}.{rest}"
        state[name] = tensor
    fresh.load_state_dict(state, strict=True)
    return fresh


def test_pruned_logits_equal_a_fresh_smaller_model(lm):
    pruned = remove_layers(lm.model, DROP)
    keep = [i for i in range(lm.num_layers) if i not in normalize_drop(DROP, lm.num_layers)]
    fresh = _fresh_with_kept_blocks(lm.model, keep)
    with torch.inference_mode():
        got = pruned(IDS).logits
        want = fresh(IDS).logits
        full = lm.model(IDS).logits
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(got, full)  # the blocks really were removed


def test_cached_generation_equals_uncached_greedy(lm):
    pruned = remove_layers(lm.model, DROP)
    prompt = IDS[:, :6]
    with torch.inference_mode():
        cached = pruned.generate(
            prompt, max_new_tokens=8, min_new_tokens=8, do_sample=False, use_cache=True, pad_token_id=0
        )
        seq = prompt
        for _ in range(8):  # uncached greedy: the whole sequence every step
            nxt = pruned(seq, use_cache=False).logits[:, -1].argmax(-1, keepdim=True)
            seq = torch.cat([seq, nxt], dim=1)
    assert cached.tolist() == seq.tolist()


def test_save_and_reload_gives_the_same_logits(lm, tmp_path):
    pruned = remove_layers(lm.model, DROP)
    pruned.save_pretrained(tmp_path)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert reloaded.config.num_hidden_layers == lm.num_layers - 2
    with torch.inference_mode():
        torch.testing.assert_close(reloaded(IDS).logits, pruned(IDS).logits, rtol=1e-5, atol=1e-5)


def test_layer_idx_and_config_are_renumbered(lm):
    pruned = remove_layers(lm.model, [0])
    blocks = get_blocks(pruned)
    assert pruned.config.num_hidden_layers == len(blocks) == lm.num_layers - 1
    for index, block in enumerate(blocks):
        found = [m.layer_idx for m in block.modules() if isinstance(getattr(m, "layer_idx", None), int)]
        assert found and set(found) == {index}
    types = getattr(lm.model.config, "layer_types", None)
    if types is not None:
        assert pruned.config.layer_types == list(types[1:])


def test_copy_false_shares_weights_and_copy_true_does_not(lm):
    shared = remove_layers(lm.model, [2])
    independent = remove_layers(lm.model, [2], copy=True)
    src = get_blocks(lm.model)[3]
    assert next(get_blocks(shared)[2].parameters()) is next(src.parameters())
    assert next(get_blocks(independent)[2].parameters()).data_ptr() != next(src.parameters()).data_ptr()
    assert len(get_blocks(lm.model)) == lm.num_layers  # the input model is untouched
    assert count_parameters(shared) == count_parameters(independent) < count_parameters(lm.model)


def test_a_pruned_view_never_writes_into_the_input_model(lm):
    """The fast structural clone (shallow hook dicts, shared tensors) leaves nothing shared that
    surgery or a caller mutates: configs, layer numbers, hooks, submodules."""
    model = lm.model
    config_before = model.config.to_dict()
    idx_before = [m.layer_idx for m in model.modules() if isinstance(getattr(m, "layer_idx", None), int)]
    pruned = remove_layers(model, [0], attn=[1] if lm.num_layers > 2 else [])
    pruned.config.foo = "bar"
    handle_count = sum(len(m._forward_hooks) for m in model.modules())
    get_blocks(pruned)[0].register_forward_hook(lambda *a: None)
    assert sum(len(m._forward_hooks) for m in model.modules()) == handle_count
    assert model.config.to_dict() == config_before and not hasattr(model.config, "foo")
    after = [m.layer_idx for m in model.modules() if isinstance(getattr(m, "layer_idx", None), int)]
    assert after == idx_before and len(get_blocks(model)) == lm.num_layers
    with torch.inference_mode():  # the input model still computes what a fresh copy computes
        torch.testing.assert_close(model(IDS).logits, remove_layers(model, [], copy=True)(IDS).logits)
    assert {id(p) for p in pruned.parameters()} <= {id(p) for p in model.parameters()}


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        ([4], r"layer index 4 is out of range.*\[-4, 3\]"),
        ([-5], r"layer index -5 is out of range"),
        ([1, 1], r"duplicate layer indices in \[1, 1\]"),
        ([0, -4], r"duplicate layer indices"),
        ([0, 1, 2, 3], r"would remove all 4 blocks"),
    ],
)
def test_bad_indices_are_rejected_with_the_allowed_range(drop, message):
    model = load_model("random:tiny-gpt2").model
    with pytest.raises(ValueError, match=message):
        remove_layers(model, drop)


def test_unknown_architecture_names_the_paths_tried():
    with pytest.raises(
        ValueError,
        match=r"cannot find the transformer blocks of Linear; tried .*model\.layers.*transformer\.h",
    ):
        remove_layers(torch.nn.Linear(2, 2), [0])
