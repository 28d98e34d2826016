"""Independent check of the suite's perplexities (issue: "agree within 0.5%").

For every single-block removal of a model, this rebuilds the pruned model *without*
``remove_layers`` (a fresh config with one layer fewer, weights copied by state-dict key
remapping) and computes perplexity from the model's own logits with the shifted-label loss in
float64 (Hugging Face's own float32 loss runs ~5e-6 relative low on SmolLM2) over the same
protocol's chunks, then compares with the suite's engine numbers.

    python scripts/verify_perplexity.py --model smollm2-135m --tokens 4096 --protocol windows
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM

from pruning import load_corpus, load_model
from pruning.data.windows import EvalProtocol
from pruning.engine.options import EngineOptions
from pruning.engine.prefix import evaluate_variants
from pruning.metrics.perplexity import prepare_windows
from pruning.models.surgery import find_block_path
from pruning.study.plan import expand_plan, parse_plan


def fresh_without(model, drop):
    """A model built from scratch with the kept blocks' weights: independent of remove_layers."""
    keep = [i for i in range(model.config.num_hidden_layers) if i != drop]
    config = type(model.config).from_dict(model.config.to_dict())
    config.num_hidden_layers = len(keep)
    if getattr(config, "layer_types", None):  # Gemma 3: each kept block keeps its own attention type
        config.layer_types = [config.layer_types[i] for i in keep]
    fresh = AutoModelForCausalLM.from_config(config).eval()
    prefix = find_block_path(model) + "."
    state = {}
    for name, tensor in model.state_dict().items():
        if name.startswith(prefix):
            index, rest = name[len(prefix) :].split(".", 1)
            if int(index) == drop:
                continue
            name = f"{prefix}{keep.index(int(index))}.{rest}"
        state[name] = tensor
    fresh.load_state_dict(state, strict=True)
    return fresh


def chunks(tokens, protocol, ctx, n_chunks, bos):
    """The protocol's chunks, written out here again from the README's rule (not from pruning)."""
    if protocol == "llamacpp":
        tokens = ([bos] if bos is not None else []) + tokens
        for i in range(n_chunks):
            chunk = list(tokens[i * ctx : (i + 1) * ctx])
            if bos is not None:
                chunk[0] = bos
            yield chunk, ctx // 2 + 1
    elif bos is None:  # windows: ctx tokens, all but the first scored
        for i in range(n_chunks):
            yield list(tokens[i * ctx : (i + 1) * ctx]), 1
    else:  # windows: BOS + ctx-1 tokens, all of them scored
        for i in range(n_chunks):
            yield [bos, *tokens[i * (ctx - 1) : (i + 1) * (ctx - 1)]], 1


def hf_loss_ppl(model, pieces):
    nll, count = 0.0, 0
    for chunk, first_scored in pieces:
        ctx = len(chunk)
        ids = torch.tensor([chunk])
        labels = ids.clone()
        labels[:, :first_scored] = -100
        with torch.inference_mode():
            logits = model(ids).logits[0, :-1]  # (ctx-1, V): each predicts the next
        targets = labels[0, 1:]
        for rows in torch.split(torch.arange(ctx - 1), 64):  # float64 64 rows at a time (Gemma: 1 GB whole)
            nll += F.cross_entropy(
                logits[rows].double(), targets[rows], ignore_index=-100, reduction="sum"
            ).item()
        count += ctx - first_scored
    return math.exp(nll / count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--tokens", type=int, default=4096)
    parser.add_argument("--ctx", type=int, default=512)
    parser.add_argument("--protocol", choices=("windows", "llamacpp"), default="windows")
    parser.add_argument("--out", default=None)
    parser.add_argument("--from-block", type=int, default=-1, help="check only removals of blocks >= this")
    args = parser.parse_args()
    lm = load_model(args.model)
    corpus = load_corpus("wikitext2")
    windows = prepare_windows(lm.tokenizer, corpus.text, EvalProtocol(args.protocol, args.ctx, args.tokens))
    variants = expand_plan(parse_plan("sequential"), lm.num_layers)
    start = time.perf_counter()
    ours, _ = evaluate_variants(lm.model, windows, variants, EngineOptions(progress=False))
    engine_s = time.perf_counter() - start
    # The BOS the tokenizer itself puts before a text, found without pruning's helper.
    special = lm.tokenizer("", add_special_tokens=True)["input_ids"]
    bos = special[0] if special and special[0] == lm.tokenizer.bos_token_id else None
    tokens = lm.tokenizer(corpus.text, add_special_tokens=False)["input_ids"]
    rows, worst = [], 0.0
    for v in variants:
        if v.drop and v.drop[0] < args.from_block:
            continue
        model = lm.model if not v.drop else fresh_without(lm.model, v.drop[0])
        theirs = hf_loss_ppl(model, chunks(tokens, args.protocol, args.ctx, len(windows), bos))
        mine = ours[v].ppl
        worst = max(worst, abs(mine / theirs - 1))
        rows.append({"id": v.id, "suite": mine, "independent": theirs, "rel_diff": mine / theirs - 1})
        print(f"{v.id:10s} suite {mine:12.4f}  independent {theirs:12.4f}  rel diff {mine / theirs - 1:+.2e}")
    print(
        f"protocol {args.protocol}, BOS {bos}: max relative difference {worst:.2e} "
        f"over {len(variants)} variants; "
        f"engine time for all variants {engine_s:.1f} s"
    )
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(
                {
                    "protocol": args.protocol,
                    "bos": bos,
                    "max_rel_diff": worst,
                    "engine_s": engine_s,
                    "rows": rows,
                },
                fh,
                indent=2,
            )


if __name__ == "__main__":
    main()
