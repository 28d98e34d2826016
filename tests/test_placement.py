"""accelerate's device_map on CPU: blocks offloaded to disk; surgery and the engine stay exact."""

from __future__ import annotations

import os
import sys

import pytest
import torch

from pruning import count_parameters, load_model, remove_layers
from pruning.data.windows import EvalProtocol
from pruning.engine.prefix import evaluate_variants
from pruning.metrics.perplexity import prepare_windows
from pruning.metrics.scoring import plain_head
from pruning.models.placement import block_devices
from pruning.search.racing import race
from pruning.study.plan import expand_plan, parse_plan

IDS = torch.tensor([[5, 80, 17, 256, 99, 3, 44, 71, 12, 200, 9, 31]])  # (1, 12)


@pytest.fixture(scope="module")
def pair():
    """The plain model, and the same weights placed with a CPU budget that forces disk offload."""
    plain = load_model("random:tiny-llama")
    placed = load_model("random:tiny-llama", device_map="sequential", max_memory={"cpu": "600KiB"})
    return plain, placed


def test_the_budget_splits_the_blocks_across_cpu_and_disk(pair):
    plain, placed = pair
    devices = block_devices(placed.model)
    assert devices == ["cpu", "cpu", "disk", "disk"]  # of a 674 KB model, 600 KiB may stay in memory
    assert block_devices(plain.model) == []
    assert placed.fingerprint == plain.fingerprint  # the same weights (hashed before placement)


def test_surgery_on_a_placed_model_gives_the_plain_logits(pair):
    plain, placed = pair
    for drop in ([], [1], [0, 3]):
        with torch.inference_mode():
            want = remove_layers(plain.model, drop)(IDS).logits
            got = remove_layers(placed.model, drop)(IDS).logits
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert count_parameters(remove_layers(placed.model, [1])) == count_parameters(
        remove_layers(plain.model, [1])
    )


def test_the_engine_and_racing_are_exact_on_a_placed_model(pair, small_corpus, engine_options):
    plain, placed = pair
    windows = prepare_windows(plain.tokenizer, small_corpus.text, EvalProtocol("windows", 64, 256))
    variants = expand_plan(parse_plan("combos:2"), plain.num_layers)
    assert plain_head(placed.model, IDS) is None  # a placed head scores through its own forward
    want, _ = evaluate_variants(plain.model, windows, variants, engine_options)
    got, _ = evaluate_variants(placed.model, windows, variants, engine_options)
    for variant in variants:
        assert got[variant].nll == pytest.approx(want[variant].nll, rel=1e-5)
        assert got[variant].kl == pytest.approx(want[variant].kl, rel=1e-4, abs=1e-7)
    found = race(placed.model, windows, variants[1:], 2, engine_options)
    best = sorted(variants[1:], key=lambda v: (want[v].ppl, v.drop))[:2]
    assert [v for v, _ in found.best] == best


def test_an_unknown_policy_or_no_room_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown device map 'fastest'; expected one of auto, balanced"):
        load_model("random:tiny-llama", device_map="fastest")
    with pytest.raises(ValueError, match="puts every module on disk; expected room"):
        load_model("random:tiny-llama", device_map="sequential", max_memory={"cpu": "100KiB"})


def test_a_temporary_offload_folder_is_deleted_when_the_process_exits(tmp_path, zygote):
    """Disk offload without an ``offload_dir`` writes the weights to a temporary folder; it must
    not outlive the process (a real model leaves gigabytes), and a map with no disk writes none."""
    script = (
        "import tempfile\n"
        "from pruning import load_model, remove_layers\n"
        "placed = load_model('random:tiny-llama', device_map='sequential', max_memory={'cpu': '600KiB'})\n"
        "remove_layers(placed.model, [3])(__import__('torch').tensor([[1, 2, 3]]))\n"
        "in_memory = load_model('random:tiny-llama', device_map='sequential', max_memory={'cpu': '1GiB'})\n"
        "print(tempfile.gettempdir())\n"
    )
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    done = zygote.run([sys.executable, "-c", script], env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(tmp_path)  # the child's temporary files went where we look
    assert not list(tmp_path.glob("pruning-offload-*"))
