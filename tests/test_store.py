"""The results store: atomic, verified, resumable, and exact after kill -9."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time

import pytest

from pruning import load_model
from pruning.data.windows import EvalProtocol
from pruning.engine.store import Store
from pruning.engine.stored import evaluate_stored
from pruning.metrics.perplexity import prepare_windows
from pruning.metrics.sums import WindowSums
from pruning.models.variant import Variant
from pruning.study.plan import expand_plan, parse_plan


@pytest.fixture(scope="module")
def setup(small_corpus):
    lm = load_model("random:tiny-llama")
    windows = prepare_windows(lm.tokenizer, small_corpus.text, EvalProtocol("windows", 64, 512))
    return lm, windows, expand_plan(parse_plan("combos:2"), lm.num_layers)


def _numbers(result):
    return {v: (s.nll, s.kl, s.top1, s.tokens) for v, s in result.scores.items()}


def test_second_sweep_reads_everything_from_the_store(setup, tmp_path, engine_options):
    lm, windows, variants = setup
    store = Store(tmp_path, "k")
    first = evaluate_stored(lm.model, windows, variants, engine_options, store)
    again = evaluate_stored(lm.model, windows, variants, engine_options, store)
    fresh = evaluate_stored(lm.model, windows, variants, engine_options, None)
    assert (first.reused, first.computed) == (0, len(variants) * len(windows))
    assert (again.reused, again.computed, again.stats) == (len(variants) * len(windows), 0, ())
    assert _numbers(again) == _numbers(first) == _numbers(fresh)


def test_corrupt_partial_and_mismatched_entries_are_recomputed(setup, tmp_path, engine_options):
    lm, windows, variants = setup
    store = Store(tmp_path, "k")
    want = _numbers(evaluate_stored(lm.model, windows, variants, engine_options, store))
    v = Variant((1, 2))
    path = tmp_path / "k" / v.id
    (path / "0.json").write_text('{"payload": {"nll": 1.0')  # truncated
    record = json.loads((path / "1.json").read_text())
    record["payload"]["nll"] += 1.0  # tampered: checksum no longer matches
    (path / "1.json").write_text(json.dumps(record))
    store.put(v, 2, windows[3], WindowSums(0.0, 0.0, 0, 1))  # an entry for another window
    assert store.get(v, 0, windows[0]) is None and store.get(v, 1, windows[1]) is None
    assert store.get(v, 2, windows[2]) is None
    again = evaluate_stored(lm.model, windows, variants, engine_options, store)
    assert again.computed == 3 and _numbers(again) == want


SWEEP_SCRIPT = """
import sys, time
from pathlib import Path
import torch
from pruning import load_model, load_corpus
from pruning.engine.options import EngineOptions
from pruning.metrics.perplexity import prepare_windows
from pruning.engine.store import Store
from pruning.engine.stored import evaluate_stored
from pruning.study.plan import expand_plan, parse_plan
from pruning.data.windows import EvalProtocol
torch.set_num_threads(1)
lm = load_model("random:tiny-llama")
windows = prepare_windows(lm.tokenizer, load_corpus("file:" + sys.argv[2]).text, EvalProtocol("windows", 128))
variants = expand_plan(parse_plan("combos:2"), lm.num_layers)
print("READY", flush=True)
start = time.perf_counter()
store = Store(Path(sys.argv[1]), "run")
result = evaluate_stored(lm.model, windows, variants, EngineOptions(progress=False), store)
print("DONE", result.reused, result.computed, time.perf_counter() - start, flush=True)
"""


def _run(zygote, script, store, corpus):
    out = zygote.run([sys.executable, script, store, corpus], check=True)
    _, reused, computed, seconds = out.stdout.split()[-4:]
    return int(reused), int(computed), float(seconds)


def _entries(root):
    return sum(1 for _ in (root / "run").rglob("*.json"))


def _payloads(root):
    paths = sorted((root / "run").rglob("*.json"))
    return {str(p.relative_to(root)): json.loads(p.read_text())["payload"] for p in paths}


@pytest.fixture(scope="module")
def clean(tmp_path_factory, data_dir, zygote):
    """The sweep script, its corpus, and one uninterrupted run's store, size and duration."""
    tmp_path = tmp_path_factory.mktemp("sweep")
    corpus = tmp_path / "corpus.txt"  # ~150 windows of 128 byte tokens
    corpus.write_text((data_dir / "wikitext-2" / "wiki.test.raw").read_text(encoding="utf-8")[:20000])
    script = tmp_path / "sweep.py"
    script.write_text(SWEEP_SCRIPT)
    reused, total, seconds = _run(zygote, str(script), str(tmp_path / "clean"), str(corpus))
    assert reused == 0 and total > 1000
    return (str(script), str(corpus)), tmp_path / "clean", total, seconds


def test_a_sweep_killed_at_random_points_resumes_to_identical_numbers(tmp_path, clean, zygote):
    """kill -9 three times, each once the sweep has added a random 10-25% of the entries (by
    progress, not by time: a sleep sized by the clean run's time finished the whole sweep when
    the clean run had been slowed by the other xdist worker)."""
    args, reference, total, _ = clean
    store, rng, kills = tmp_path / "store", random.Random(0), 0
    for _ in range(3):
        target = _entries(store) + rng.uniform(0.1, 0.25) * total
        proc = zygote.popen([sys.executable, args[0], str(store), args[1]], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "READY"
        while proc.poll() is None and _entries(store) < target:
            time.sleep(0.02)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    reused, computed, _ = _run(zygote, args[0], str(store), args[1])
    assert kills == 3 and 0 < reused < total and reused + computed == total
    assert _payloads(store) == _payloads(reference)


def test_three_processes_share_one_store_one_killed_and_it_equals_a_serial_run(tmp_path, clean, zygote):
    """Concurrent writers of the same entries (atomic renames), one killed mid-sweep."""
    args, reference, total, seconds = clean
    store = tmp_path / "store"
    procs = [
        zygote.popen([sys.executable, args[0], str(store), args[1]], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "READY"
    time.sleep(0.5 * seconds)  # three sweeps on two cores: each is well short of done
    assert procs[0].poll() is None
    procs[0].send_signal(signal.SIGKILL)
    assert [proc.wait() for proc in procs] == [-signal.SIGKILL, 0, 0]
    reused, computed, _ = _run(zygote, args[0], str(store), args[1])
    assert (reused, computed) == (total, 0)  # the survivors left every entry, whole
    assert _payloads(store) == _payloads(reference)  # entry for entry (a killed writer may leave a
    # hidden temporary file, never an entry: entries appear only by rename)


def test_the_json_digest_is_sha256_of_sorted_json_whatever_the_key_order():
    from pruning.common.digest import digest_json

    # sha256 of the bytes {"a": [1, 2], "b": 1}, computed with sha256sum
    known = "3813f9409eb0095bf9c8e1225c627acf867d89bd18b8856fc38588a0c8c490f3"
    assert digest_json({"b": 1, "a": [1, 2]}) == known == digest_json({"a": [1, 2], "b": 1})
