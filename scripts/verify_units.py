"""Independent check of published sub-layer perplexities (by default docs/results/smollm2-units/).

The original SmolLM2 with each removed branch's output zeroed by a forward hook (a removed whole
block: both its branches; no surgery, none of the suite's scoring), the shifted-label loss of
the model's own logits in float64 (Hugging Face's own float32 loss runs ~5e-6 relative low on
SmolLM2) over the report's 8 raw 512-token chunks of WikiText-2 test, starting where its
``window_starts`` say (a report without them read the first 8 in a row; the ``windows``
protocol: 511 scored tokens per window). Writes ``<report>/independent_check.json``.

    PRUNING_DATA_DIR=../shared/data .venv/bin/python scripts/verify_units.py
    PRUNING_DATA_DIR=../shared/data .venv/bin/python scripts/verify_units.py \
        docs/results/smollm2-units-vs-blocks "drop[attn4,attn7,attn26,attn29]" "drop[14,17]"
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from pruning import load_corpus, load_model

OUT = Path("docs/results/smollm2-units")
UNITS = ["base", "drop[attn7]", "drop[attn0]", "drop[mlp12]", "drop[attn24]", "drop[mlp28]"]


def zero(_module: torch.nn.Module, _args: object, out: object) -> object:
    if isinstance(out, tuple):
        return (torch.zeros_like(out[0]), *out[1:])
    assert isinstance(out, torch.Tensor)
    return torch.zeros_like(out)


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT
    variants = sys.argv[2:] or UNITS
    lm = load_model("smollm2-135m")
    text = load_corpus("wikitext2", split="test").text
    tokens = lm.tokenizer(text, add_special_tokens=False)["input_ids"]
    rows = {r["id"]: r for r in json.loads((out / "results.json").read_text())["rows"]}
    starts = rows["base"].get("window_starts") or [k * 512 for k in range(8)]
    blocks = lm.model.model.layers
    found = {}
    for vid in variants:
        handles = []
        for unit in vid[5:-1].split(",") if vid != "base" else []:
            i = int(unit.removeprefix("attn").removeprefix("mlp"))
            zeroed = [blocks[i].self_attn] if not unit.startswith("mlp") else []
            zeroed += [blocks[i].mlp] if not unit.startswith("attn") else []
            handles += [branch.register_forward_hook(zero) for branch in zeroed]
        nll = 0.0
        for start in starts:
            ids = torch.tensor([tokens[start : start + 512]])
            with torch.inference_mode():
                logits = lm.model(ids).logits[0, :-1].double()  # (511, V): each predicts the next
            nll += F.cross_entropy(logits, ids[0, 1:], reduction="sum").item()
        for handle in handles:
            handle.remove()
        ppl, suite = math.exp(nll / (511 * len(starts))), rows[vid]["ppl"]
        found[vid] = {"independent_ppl": ppl, "suite_ppl": suite, "rel_diff": abs(ppl / suite - 1)}
        print(vid, found[vid], flush=True)
    (out / "independent_check.json").write_text(json.dumps(found, indent=1))


if __name__ == "__main__":
    main()
