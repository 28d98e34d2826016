"""Healing: the linear fit against an independent least-squares solve, LoRA through peft, the
cache, the refusals, and that healing reads calibration windows only."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import nn

from pruning import load_model
from pruning.data.windows import EvalProtocol
from pruning.healing.cache import HealCache
from pruning.healing.linear import HealError, down_projection, fold_probe, removed_runs
from pruning.healing.methods import HEALERS, heal
from pruning.healing.settings import HealSettings, LoraSettings
from pruning.metrics.perplexity import prepare_windows
from pruning.models.loading import state_dict_sha256
from pruning.models.parameters import count_parameters
from pruning.models.surgery import get_blocks, remove_layers
from pruning.models.variant import Variant
from pruning.study.plan import parse_plan
from pruning.study.study import Study

FAMILIES = ["tiny-gpt2", "tiny-llama", "tiny-mistral", "tiny-qwen2", "tiny-phi3"]
FAMILIES += ["tiny-opt", "tiny-gptneox", "tiny-falcon"]
FAST = HealSettings(tokens=512, lora=LoraSettings(rank=4, alpha=8, steps=6, lr=1e-2, loss="kd"))


@pytest.fixture(scope="module")
def lm():
    return load_model("random:tiny-llama")


@pytest.fixture(scope="module")
def calib(lm, small_corpus):
    return prepare_windows(lm.tokenizer, small_corpus.text, EvalProtocol("windows", 64, 1024))


def _outputs(model: nn.Module, modules: dict[str, nn.Module], ids: torch.Tensor) -> dict[str, torch.Tensor]:
    """Plain forward hooks, written again here so the check does not reuse the code it checks."""
    got: dict[str, torch.Tensor] = {}
    handles = [
        m.register_forward_hook(
            lambda _m, _a, out, n=n: got.__setitem__(n, out[0] if isinstance(out, tuple) else out)
        )
        for n, m in modules.items()
    ]
    with torch.no_grad():
        model(input_ids=ids, use_cache=False)
    for h in handles:
        h.remove()
    return {k: v.reshape(-1, v.shape[-1]).double() for k, v in got.items()}  # (T, C)


def _kl(reference: nn.Module, model: nn.Module, windows) -> float:
    """Mean KL(reference || model) per position, from scratch."""
    total = 0.0
    with torch.no_grad():
        for w in windows:
            p = torch.log_softmax(reference(input_ids=w.ids[None]).logits.double(), -1)
            q = torch.log_softmax(model(input_ids=w.ids[None]).logits.double(), -1)
            total += float((p.exp() * (p - q)).sum(-1).mean())
    return total / len(windows)


def _nll(model: nn.Module, windows) -> float:
    """Mean next-token NLL per position, from scratch."""
    with torch.no_grad():
        losses = [
            torch.nn.functional.cross_entropy(model(input_ids=w.ids[None]).logits[0, :-1], w.ids[1:])
            for w in windows
        ]
    return float(torch.stack(losses).mean())


def test_removed_runs_are_maximal_runs_of_consecutive_blocks():
    assert removed_runs((5, 1, 2, 7, 6)) == [(1, 2), (5, 7)]
    assert removed_runs(()) == []


def test_linear_map_is_the_least_squares_solution_and_is_folded_exactly(lm, calib):
    drop = (1, 2)
    settings = HealSettings(tokens=1024, ridge=0.0)
    healed = heal(lm.model, Variant(drop, "linear"), calib, settings, "run")
    # independent: stack every calibration position and solve min ||M T - (L - Y)|| with lstsq
    pruned = remove_layers(lm.model, drop)
    block = get_blocks(pruned)[0]  # the kept block before the run (original 0)
    ms, targets = [], []
    for w in calib:
        ids = w.ids[None]
        want = _outputs(lm.model, {"L": get_blocks(lm.model)[2]}, ids)["L"]
        got = _outputs(pruned, {"M": down_projection(block), "h": block}, ids)
        ms.append(got["M"])
        targets.append(want - (got["h"] - got["M"]))
    m, target = torch.cat(ms), torch.cat(targets)  # (N, C) each
    reference = torch.linalg.lstsq(m, target).solution
    healed_block = get_blocks(healed.model)[0]
    for w, m_i, t_i in zip(calib[:2], ms[:2], targets[:2], strict=True):
        y = _outputs(pruned, {"h": block}, w.ids[None])["h"] - m_i  # (T, C): block 0's output less its MLP
        out = _outputs(healed.model, {"h": healed_block}, w.ids[None])["h"]
        assert torch.allclose(out, y + m_i @ reference, rtol=1e-3, atol=1e-4)  # healed block = Y + M T_lstsq
        assert (m_i @ reference - t_i).norm() < (m_i - t_i).norm()  # beats T = I (the unhealed model)
    assert count_parameters(healed.model) == count_parameters(pruned)  # folded: nothing added
    assert healed.record.losses == () and healed.record.seconds > 0


def test_linear_heals_every_family_that_can_fold_and_refuses_the_others(small_corpus):
    for family in FAMILIES:
        lm = load_model(f"random:{family}")
        windows = prepare_windows(lm.tokenizer, small_corpus.text, EvalProtocol("windows", 64, 256))
        before = state_dict_sha256(lm.model)
        healed = heal(lm.model, Variant((2,), "linear"), windows, FAST, "run")
        assert len(get_blocks(healed.model)) == 3, family
        assert state_dict_sha256(lm.model) == before, family  # the loaded model is untouched
    gemma = load_model("random:tiny-gemma3")  # its MLP output passes through a norm first
    with pytest.raises(HealError, match=r"cannot heal 'drop\[2\]\+linear' with linear: .*norm"):
        HEALERS.get("linear").check(gemma.model, Variant((2,), "linear"))


def test_linear_refuses_a_run_without_a_kept_block_before_it(lm):
    with pytest.raises(HealError, match=r"'drop\[0,1\]\+linear' removes block 0"):
        HEALERS.get("linear").check(lm.model, Variant((0, 1), "linear"))


def test_lora_trains_through_peft_and_merges_into_plain_weights(lm, calib):
    before = state_dict_sha256(lm.model)
    pruned = remove_layers(lm.model, (1,))
    healed = heal(lm.model, Variant((1,), "lora"), calib, FAST, "run")
    assert len(healed.record.losses) == 6
    seen = calib[:6]  # one window a step
    assert _kl(lm.model, healed.model, seen) < 0.9 * _kl(lm.model, pruned, seen)  # distillation works
    ce = HealSettings(tokens=512, lora=LoraSettings(rank=4, alpha=8, steps=6, lr=1e-2, loss="ce"))
    trained = heal(lm.model, Variant((1,), "lora"), calib, ce, "run")
    assert _nll(trained.model, seen) < 0.99 * _nll(pruned, seen)  # the next-token loss falls
    assert not any("lora" in name for name, _ in healed.model.named_modules())  # merged
    assert count_parameters(healed.model) == count_parameters(pruned)
    assert state_dict_sha256(lm.model) == before
    changed = [
        n
        for n, p in healed.model.named_parameters()
        if not torch.equal(p, dict(pruned.named_parameters())[n])
    ]
    assert changed and all("blocks" in n or "layers" in n for n in changed)  # adapters on the blocks only


def test_the_cache_reuses_a_healing_only_under_the_same_settings(lm, calib, tmp_path):
    cache = HealCache(tmp_path)
    ids = calib[0].ids[None]
    first = heal(lm.model, Variant((1,), "lora"), calib, FAST, "run", cache)
    again = heal(lm.model, Variant((1,), "lora"), calib, FAST, "run", cache)
    assert not first.record.reused and again.record.reused and again.record.key == first.record.key
    assert again.record.seconds == first.record.seconds and again.record.losses == first.record.losses
    with torch.no_grad():
        assert torch.equal(first.model(input_ids=ids).logits, again.model(input_ids=ids).logits)
    other = HealSettings(tokens=512, lora=LoraSettings(rank=4, alpha=8, steps=5, lr=1e-2))
    assert not heal(lm.model, Variant((1,), "lora"), calib, other, "run", cache).record.reused
    assert not heal(lm.model, Variant((1,), "lora"), calib[1:], FAST, "run", cache).record.reused
    assert not heal(lm.model, Variant((1,), "lora"), calib, FAST, "other run", cache).record.reused
    tensors = tmp_path / "heal" / first.record.key / "tensors.safetensors"
    tensors.write_bytes(tensors.read_bytes()[:-8])  # a corrupt entry reads as absent
    assert not heal(lm.model, Variant((1,), "lora"), calib, FAST, "run", cache).record.reused


def test_healing_never_reads_the_evaluation_windows(wikitext_study_settings):
    """Record every token sequence the model sees while both methods heal: calibration only."""
    heal_settings = HealSettings(("linear", "lora"), 512, lora=LoraSettings(rank=2, alpha=4, steps=3))
    settings = replace(wikitext_study_settings, plan=parse_plan("drop:1"), heal=heal_settings)
    study = Study(settings)
    assert [v.id for v in study.variants()] == ["base", "drop[1]", "drop[1]+linear", "drop[1]+lora"]
    seen: list[tuple[int, ...]] = []
    embed = study.lm.model.get_input_embeddings()  # shared by every pruned copy's forward
    embed.register_forward_pre_hook(lambda _m, args: seen.append(tuple(args[0][0].tolist())))
    for method in ("linear", "lora"):
        study.healed(Variant((1,), method))
    evaluation = {tuple(w.ids.tolist()) for w in study.windows}
    calibration = {tuple(w.ids.tolist()) for w in study.heal_windows}
    probe = tuple(fold_probe(study.lm.model.config.vocab_size)[0].tolist())  # synthetic ids, no text
    text = set(seen) - {probe}
    assert text and text <= calibration and not text & evaluation
    assert calibration.isdisjoint(evaluation)


def test_linear_fits_each_removed_run_in_block_order(lm, calib):
    """drop[1,3] is two runs, so two maps: the first (folded into block 0) is the one drop[1]
    alone gets; the second (into block 2) is fitted on the model the first already healed. The
    real-model golden heals a single run; this keeps several runs covered."""
    settings = HealSettings(tokens=1024, ridge=0.0)
    both = heal(lm.model, Variant((1, 3), "linear"), calib, settings, "run").model
    first = heal(lm.model, Variant((1,), "linear"), calib, settings, "run").model
    plain = remove_layers(lm.model, (1, 3))

    def weight(model: nn.Module, index: int) -> torch.Tensor:
        return down_projection(get_blocks(model)[index]).weight

    assert torch.equal(weight(both, 0), weight(first, 0))
    assert not torch.equal(weight(both, 0), weight(plain, 0))
    assert not torch.equal(weight(both, 1), weight(plain, 1))  # original block 2 hosts the second map
    assert _kl(lm.model, both, calib[:4]) < _kl(lm.model, plain, calib[:4])
