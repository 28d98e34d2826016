"""Export: every family's pruned variant reloads with stock transformers in a fresh process
(``pruning`` never imported there) and gives the in-memory variant's perplexity; a failed
export leaves nothing that looks complete."""

from __future__ import annotations

import json
import math
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from pruning import load_model, remove_layers
from pruning.data.windows import EvalProtocol
from pruning.healing.methods import heal
from pruning.healing.settings import HealSettings, LoraSettings
from pruning.metrics.perplexity import prepare_windows
from pruning.metrics.scoring import score, scored_logits
from pruning.models import saving
from pruning.models.saving import ExportError
from pruning.models.variant import Variant
from pruning.reporting.export import export
from pruning.results.rows import Row

FAMILIES = ["tiny-gpt2", "tiny-llama", "tiny-mistral", "tiny-qwen2", "tiny-phi3", "tiny-gemma3"]
FAMILIES += ["tiny-opt", "tiny-gptneox", "tiny-falcon"]
VARIANT = Variant((1, 3))  # a middle block and the last one
HEALING = HealSettings(tokens=128, lora=LoraSettings(rank=2, alpha=4, steps=2, lr=1e-2))
IDS = torch.tensor(
    [[5, 80, 17, 256, 99, 3, 44, 71, 12, 200, 9, 31, 77, 150, 2, 64, 8, 19, 33, 120]]
)  # (1, 20)

# Runs in a new process (the stock zygote): stock transformers only, and it proves ``pruning`` was
# not imported.
RELOAD = """
import json, math, sys
import torch
from transformers import AutoModelForCausalLM
ids = torch.tensor(json.loads(sys.argv[1]))
out = {}
for directory in sys.argv[2:]:
    model = AutoModelForCausalLM.from_pretrained(directory).eval()
    with torch.inference_mode():
        logits = model(input_ids=ids, use_cache=False).logits[:, :-1].float()
    nll = torch.nn.functional.cross_entropy(logits[0], ids[0, 1:], reduction="sum").item()
    out[directory] = {"ppl": math.exp(nll / (ids.shape[1] - 1)), "layers": model.config.num_hidden_layers}
assert not any(name == "pruning" or name.startswith("pruning.") for name in sys.modules)
print(json.dumps(out))
"""


def _ppl(model: torch.nn.Module) -> float:
    with torch.inference_mode():
        nll = score(scored_logits(model, IDS, 1), IDS[:, 1:], None).nll.item()
    return math.exp(nll / (IDS.shape[1] - 1))


def test_healed_variants_reload_in_a_fresh_process_on_every_family_that_heals(
    tmp_path, small_corpus, stock_zygote
):
    """Both methods merge into the weights, so every family's config expresses the healed model;
    linear refuses Gemma 3 (``tests/test_healing.py``), lora heals it too."""
    want, dirs = {}, []
    for family in FAMILIES:
        lm = load_model(f"random:{family}")
        windows = prepare_windows(lm.tokenizer, small_corpus.text, EvalProtocol("windows", 32, 128))
        for method in ("linear", "lora") if family != "tiny-gemma3" else ("lora",):
            variant = Variant((2,), method)
            healed = heal(lm.model, variant, windows, HEALING, "run")
            directory = export(lm, variant, tmp_path / f"{family}-{method}", healed=healed)
            want[str(directory)] = _ppl(healed.model)
            dirs.append(str(directory))
            assert f"- healing: `{method}` on calibration text only" in (directory / "README.md").read_text()
    with pytest.raises(ValueError, match=r"exporting 'drop\[2\]\+lora' needs its lora healed model"):
        export(lm, Variant((2,), "lora"), tmp_path / "unhealed")
    got = json.loads(
        stock_zygote.run([sys.executable, "-c", RELOAD, json.dumps(IDS.tolist()), *dirs], check=True).stdout
    )
    assert len(dirs) == 2 * len(FAMILIES) - 1
    for directory in dirs:
        assert got[directory]["layers"] == 3
        assert got[directory]["ppl"] == pytest.approx(want[directory], rel=1e-5), directory


def test_every_family_reloads_in_a_fresh_process_with_the_same_perplexity(tmp_path, stock_zygote):
    want, dirs = {}, []
    for family in FAMILIES:
        lm = load_model(f"random:{family}")
        directory = export(lm, VARIANT, tmp_path / family)
        want[str(directory)] = _ppl(remove_layers(lm.model, VARIANT.drop))
        dirs.append(str(directory))
        assert {"config.json", "model.safetensors", "README.md"} <= {p.name for p in directory.iterdir()}
    done = stock_zygote.run([sys.executable, "-c", RELOAD, json.dumps(IDS.tolist()), *dirs], check=True)
    got = json.loads(done.stdout)
    for directory in dirs:
        assert got[directory]["layers"] == 2
        assert got[directory]["ppl"] == pytest.approx(want[directory], rel=1e-5), directory


def test_the_model_card_states_source_removed_blocks_and_the_measured_row(tmp_path):
    lm = load_model("random:tiny-llama")
    row = Row("drop[1,3]", (1, 3), 2, 412.5, (380.25, 450.75), 12345, 0.5, 0.25, 2048, ppl_change_pct=12.5)
    fingerprint = _fingerprint(lm)
    card = (export(lm, VARIANT, tmp_path / "v", row, fingerprint) / "README.md").read_text()
    assert lm.fingerprint.weights_sha256 in card and "removed blocks (0-based): [1, 3]; 2 of 4 kept" in card
    assert "perplexity 412.500 (95% CI 380.250–450.750" in card and "+12.50%" in card
    assert f"corpus `wikitext2` sha256 `{fingerprint.corpus_sha256}`" in card and "healing: none" in card
    timed = replace(row, speed_change_pct=-3.0, speed_change_ci95=(-5.0, -1.0), decode_change_pct=-1.0)
    timed = replace(timed, decode_change_ci95=(-4.0, 2.0))  # its interval includes 0: not a finding
    card = (export(lm, VARIANT, tmp_path / "timed", timed, fingerprint) / "README.md").read_text()
    assert "- prefill time change vs unpruned: -3.0% (95% CI -5.0 … -1.0%, same-run timing)" in card
    assert "- decode time per token: no significant change vs unpruned (95% CI -4.0 … +2.0%" in card
    assert "decode time per token change" not in card  # its -1.0% is not shown as a change
    bare = (export(lm, VARIANT, tmp_path / "bare") / "README.md").read_text()
    assert "Not measured" in bare


def test_an_interrupted_export_leaves_nothing_and_keeps_the_old_one(tmp_path, monkeypatch):
    lm = load_model("random:tiny-gpt2")
    target = export(lm, VARIANT, tmp_path / "v")
    before = {p.name: p.read_bytes() for p in target.iterdir()}

    def dies(*args: object) -> None:
        raise KeyboardInterrupt  # Ctrl-C halfway through writing

    monkeypatch.setattr("pruning.reporting.export.check_reload", dies)
    with pytest.raises(KeyboardInterrupt):
        export(lm, Variant((2,)), target)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before  # the old export, untouched
    assert [p.name for p in tmp_path.iterdir()] == ["v"]  # no partial directory beside it
    with pytest.raises(KeyboardInterrupt):
        export(lm, Variant((2,)), tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_a_directory_that_reloads_differently_is_refused(tmp_path, monkeypatch):
    lm = load_model("random:tiny-llama")
    unpruned = lm.model

    def wrong(directory: Path, dtype: torch.dtype) -> torch.nn.Module:
        return unpruned  # what a config that cannot express the removal would reload to

    monkeypatch.setattr(saving.AutoModelForCausalLM, "from_pretrained", wrong)
    with pytest.raises(ExportError, match=r"LlamaForCausalLM: the saved directory reloads .* different"):
        export(lm, VARIANT, tmp_path / "v")
    assert list(tmp_path.iterdir()) == []


def _fingerprint(lm):
    from pruning.common.machine import this_machine
    from pruning.data.corpora import make_corpus
    from pruning.data.windows import EvalProtocol
    from pruning.metrics.fingerprint import run_fingerprint

    corpus = make_corpus("wikitext2", "test", "some text", "file:/x")
    return run_fingerprint(lm, corpus, EvalProtocol("windows", 512, 4096), "cpu", this_machine())
