"""Local lm-eval tasks made from a text: for offline runs, tests and the published study.

``write_local_tasks(text, folder, n)`` writes two tasks in lm-eval's YAML format over JSON-lines
files beside them (give the folder to ``--prune-tasks-path``):

- ``wikitext_next4`` (``multiple_choice``): a paragraph's first 24 words; the choices are its
  next 4 words and 3 spans of 4 words taken from other paragraphs; metrics ``acc`` and
  ``acc_norm`` (lm-eval's length-normalised accuracy);
- ``wikitext_cloze`` (``loglikelihood``): the same 24 words; the continuation is the next word;
  ``acc`` is lm-eval's ``is_greedy``: whether every token of that word is the model's argmax.

Paragraphs are lines of 40 words or more that are not headings, in order; distractors are drawn
with a fixed seed. Made from WikiText-2's *validation* split, never from the evaluation split.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

CONTEXT_WORDS = 24
MC_TASK, CLOZE_TASK = "wikitext_next4", "wikitext_cloze"

_MC_YAML = """task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{context}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{label}}}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""

_CLOZE_YAML = """task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: loglikelihood
doc_to_text: "{{{{context}}}}"
doc_to_target: "{{{{continuation}}}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""


def paragraphs(text: str) -> list[list[str]]:
    """The words of each line with 40 words or more that is not a heading."""
    return [
        line.split()
        for line in text.splitlines()
        if len(line.split()) >= 40 and not line.strip().startswith("=")
    ]


def write_local_tasks(text: str, folder: Path, n: int, seed: int = 0) -> list[Path]:
    """Write both tasks with ``n`` examples each (``ValueError`` if ``text`` has fewer paragraphs)."""
    paras = paragraphs(text)
    if len(paras) < n:
        raise ValueError(f"the text has {len(paras)} usable paragraphs; {n} examples were asked for")
    rng = random.Random(seed)
    mc, cloze = [], []
    for i, words in enumerate(paras[:n]):
        context = " ".join(words[:CONTEXT_WORDS])
        gold = " " + " ".join(words[CONTEXT_WORDS : CONTEXT_WORDS + 4])
        others = [j for j in range(len(paras)) if j != i]
        spans = []
        for j in rng.sample(others, 3):
            start = rng.randrange(len(paras[j]) - 4)
            spans.append(" " + " ".join(paras[j][start : start + 4]))
        choices = [gold, *spans]
        rng.shuffle(choices)
        mc.append({"context": context, "choices": choices, "label": choices.index(gold)})
        cloze.append({"context": context, "continuation": " " + words[CONTEXT_WORDS]})
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, docs, template in ((MC_TASK, mc, _MC_YAML), (CLOZE_TASK, cloze, _CLOZE_YAML)):
        data = folder / f"{name}.jsonl"
        data.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
        yaml = folder / f"{name}.yaml"
        yaml.write_text(template.format(name=name, data=json.dumps(str(data.resolve()))), encoding="utf-8")
        written += [data, yaml]
    return written
