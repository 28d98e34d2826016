from __future__ import annotations

import hashlib
import threading
import time

import pytest
import torch

from pruning import ModelLoadError, load_model
from pruning.models import loading
from pruning.models.architectures import ARCHITECTURES
from pruning.models.loading import state_dict_sha256
from pruning.models.tokenizers import byte_tokenizer


def test_random_models_are_seeded_and_fingerprinted():
    a = load_model("random:tiny-gpt2")
    b = load_model("random:tiny-gpt2")
    assert a.fingerprint == b.fingerprint
    # the documented definition, by hand: sha256 over name|dtype|shape| and the raw bytes of
    # every tensor of the state dict, sorted by name
    digest = hashlib.sha256()
    for name, tensor in sorted(a.model.state_dict().items()):
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.contiguous().numpy().tobytes())
    assert a.fingerprint.weights_sha256 == digest.hexdigest()
    with torch.no_grad():  # one weight one ulp away is another model
        next(b.model.parameters()).view(-1)[0] = torch.nextafter(
            next(b.model.parameters()).view(-1)[0], torch.tensor(1.0)
        )
    assert state_dict_sha256(b.model) != a.fingerprint.weights_sha256
    assert a.num_layers == 4 and not a.model.training
    assert a.fingerprint.torch == torch.__version__


def test_dtype_is_applied_and_recorded():
    lm = load_model("random:tiny-llama", dtype="bfloat16")
    assert next(lm.model.parameters()).dtype == torch.bfloat16
    assert lm.fingerprint.dtype == "bfloat16"


def test_byte_tokenizer_round_trips_any_text():
    lm = load_model("random:tiny-gpt2")
    text = "Ünïcode — 漢字 and bytes\n"
    ids = lm.tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == len(text.encode()) and max(ids) < 256
    assert lm.tokenizer.decode(ids) == text


def test_unknown_random_architecture_suggests_the_closest():
    with pytest.raises(
        ModelLoadError, match=r"unknown random architecture 'tiny-lama'.*did you mean 'tiny-llama'"
    ):
        load_model("random:tiny-lama")
    assert {"distilgpt2", "gpt2", "tiny-gpt2", "tiny-llama"} <= set(ARCHITECTURES)


def test_unknown_dtype_is_rejected():
    with pytest.raises(ValueError, match=r"unknown dtype 'fp8'; expected one of float32, bfloat16"):
        load_model("random:tiny-gpt2", dtype="fp8")


def test_missing_gguf_file_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match=r"GGUF file '.*nope.gguf' does not exist"):
        load_model(f"gguf:{tmp_path}/nope.gguf")


def test_hub_ids_fail_fast_offline_and_name_the_offline_specs(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty hub cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(
        ModelLoadError, match=r"'distilgpt2'.*unreachable; offline specs: smollm2-135m, gemma3-270m"
    ):
        load_model("distilgpt2")
    assert time.monotonic() - start < 10


def test_unreachable_hub_fails_fast_without_hf_hub_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # loopback, nothing listens there
    start = time.monotonic()
    with pytest.raises(ModelLoadError, match=r"the hub \(huggingface.co\) is unreachable"):
        load_model("someone/some-model")
    assert time.monotonic() - start < 10


def test_local_directory_spec_loads(tmp_path):
    lm = load_model("random:tiny-gpt2")
    lm.model.save_pretrained(tmp_path)
    lm.tokenizer.save_pretrained(tmp_path)
    again = load_model(str(tmp_path))
    assert again.num_layers == 4
    assert again.fingerprint.weights_sha256 == lm.fingerprint.weights_sha256


def test_one_process_converts_a_gguf_file_while_the_others_wait(tmp_path):
    """Two loaders of the same GGUF file with an empty cache (xdist workers): the second waits on
    the first's lock and loads its saved directory instead of converting the file again."""
    target = tmp_path / "converted" / "abc-transformers-5"
    calls = []

    def convert():
        calls.append(threading.current_thread().name)
        time.sleep(0.5)  # long enough for the other thread to find no directory without the lock
        return load_model("random:tiny-llama").model, byte_tokenizer()

    found = {}

    def load(name):
        found[name] = loading._converted_once(target, convert)

    threads = [threading.Thread(target=load, args=(name,), name=name) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and (target / loading.CONVERTED_MARK).is_file()
    a, b = (found[name][0] for name in ("a", "b"))
    assert state_dict_sha256(a) == state_dict_sha256(b)
    assert found["a"][1]("hello")["input_ids"] == found["b"][1]("hello")["input_ids"]


def test_a_read_only_cache_converts_without_a_lock(tmp_path):
    """Where the cache cannot be written, each process converts for itself (nothing is saved)."""
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    target = blocked / "converted" / "abc"  # its parent cannot be created
    tiny = load_model("random:tiny-llama").model
    model, _ = loading._converted_once(target, lambda: (tiny, byte_tokenizer()))
    assert model is tiny and not target.exists()
