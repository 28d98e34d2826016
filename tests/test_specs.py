"""Model and corpus specs: each parsed once, by its own layer, and written back as given."""

from __future__ import annotations

import pytest

from pruning.data.specs import CorpusSpec, parse_corpus_spec
from pruning.models.specs import ModelSpec, parse_model_spec


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("smollm2-135m", ModelSpec("name", "smollm2-135m")),
        ("HuggingFaceTB/SmolLM2-135M", ModelSpec("name", "HuggingFaceTB/SmolLM2-135M")),
        ("gguf:~/models/x.gguf", ModelSpec("gguf", "~/models/x.gguf")),
        ("random:tiny-llama", ModelSpec("random", "tiny-llama")),
        ("./local/dir", ModelSpec("name", "./local/dir")),
    ],
)
def test_model_specs_parse_and_write_back(text, spec):
    assert parse_model_spec(text) == spec and str(spec) == text
    assert parse_model_spec(spec) is spec


@pytest.mark.parametrize("text", ["", "  ", "gguf:", "random:"])
def test_empty_model_specs_are_refused_quoting_them(text):
    with pytest.raises(ValueError, match=f"invalid model spec {text!r}"):
        parse_model_spec(text)


def test_model_spec_checks_name_the_missing_file_and_the_unknown_architecture(tmp_path):
    with pytest.raises(ValueError, match=r"GGUF file '.*nope.gguf' does not exist"):
        parse_model_spec(f"gguf:{tmp_path}/nope.gguf").check()
    unknown = r"unknown random architecture 'tiny-lama'.*did you mean 'tiny-llama'"
    with pytest.raises(ValueError, match=unknown):
        parse_model_spec("random:tiny-lama").check()
    parse_model_spec("random:tiny-llama").check()
    parse_model_spec("some/hub-id").check()  # the network decides at load time


@pytest.mark.parametrize(
    ("text", "spec"),
    [("wikitext2", CorpusSpec("wikitext2")), ("file:~/a b.txt", CorpusSpec(file="~/a b.txt"))],
)
def test_corpus_specs_parse_and_write_back(text, spec):
    assert parse_corpus_spec(text) == spec and str(spec) == text


@pytest.mark.parametrize("text", ["", "file:"])
def test_empty_corpus_specs_are_refused_quoting_them(text):
    with pytest.raises(ValueError, match=f"invalid corpus {text!r}"):
        parse_corpus_spec(text)


def test_a_missing_corpus_file_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"corpus file '.*gone.txt' does not exist"):
        parse_corpus_spec(f"file:{tmp_path}/gone.txt").check()
    (tmp_path / "here.txt").write_text("text")
    parse_corpus_spec(f"file:{tmp_path}/here.txt").check()


def test_the_plugin_holds_no_copy_of_the_spec_grammars():
    """The prefixes are spelled in the specs modules only."""
    from pathlib import Path

    plugin = Path(__file__).resolve().parents[1] / "pruning" / "plugin"
    for path in plugin.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        for prefix in ('"gguf:"', '"random:"', '"file:"'):
            assert f"startswith({prefix}" not in text and f"removeprefix({prefix}" not in text, path.name
