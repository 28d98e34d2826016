"""Export: a pruned variant as a stock Hugging Face model directory with a model card.

The directory holds ``save_pretrained`` output (config and safetensors weights), the tokenizer
and a ``README.md`` model card: the source model and its weights' sha256, the removed blocks,
its healing (method, settings, time), and the measured row (perplexity with its 95% CI,
parameters, prefill and decode change with their 95% CIs, the protocol and corpus). It is
written whole or not at all, and only after stock ``AutoModelForCausalLM`` reloaded it to the same logits
(``pruning.models.saving``), so it loads without ``pruning`` installed.
"""

from __future__ import annotations

from datetime import date
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, cast

import torch
from transformers import PreTrainedModel

from pruning.healing.methods import Healed, HealRecord
from pruning.metrics.fingerprint import RunFingerprint
from pruning.metrics.latency import excludes
from pruning.models.loading import LoadedModel
from pruning.models.parameters import count_parameters
from pruning.models.saving import check_reload, save_plain, staged_directory
from pruning.models.surgery import remove_layers
from pruning.models.variant import Variant
from pruning.reporting.tables import num_cell
from pruning.results.rows import Row

PROBE_TOKENS = 32  # input positions of the reload check


def export(
    lm: LoadedModel,
    variant: Variant,
    directory: Path,
    row: Row | None = None,
    fingerprint: RunFingerprint | None = None,
    healed: Healed | None = None,
) -> Path:
    """Write ``variant`` of ``lm`` to ``directory`` (replacing an older export only once whole).

    ``row`` and ``fingerprint`` (a run's measurement of it) go into the model card; without
    them the card says the variant was not measured. A healed variant needs its ``healed``
    model (``pruning.healing.methods.heal``). ``ExportError`` when stock transformers would
    reload it differently.
    """
    if variant.heal and (healed is None or healed.record.method != variant.heal):
        raise ValueError(f"exporting {variant.id!r} needs its {variant.heal} healed model (pruning.healing)")
    # the healed model, or a view sharing the loaded weights
    pruned = remove_layers(lm.model, variant.drop, variant.attn, variant.mlp)  # sub-layers: refused on save
    model = cast(PreTrainedModel, healed.model if healed else pruned)
    vocab = int(model.config.vocab_size)
    probe = (torch.arange(PROBE_TOKENS) * 7919 % vocab)[None]  # (1, T) spread over the vocabulary
    with staged_directory(directory) as stage:
        save_plain(model, stage)
        lm.tokenizer.save_pretrained(stage)
        record = None if healed is None else healed.record
        card = model_card(lm, variant, count_parameters(model), row, fingerprint, record)
        (stage / "README.md").write_text(card, encoding="utf-8")
        check_reload(model, stage, probe)
    return directory


def model_card(
    lm: LoadedModel,
    variant: Variant,
    params: int,
    row: Row | None,
    fingerprint: RunFingerprint | None,
    healing: HealRecord | None = None,
) -> str:
    """The model card: YAML front matter for the hub, provenance, and the measured row."""
    fp = lm.fingerprint
    kept = lm.num_layers - len(variant.drop)
    lines = [
        "---",
        "library_name: transformers",
        "tags: [pruning-kit, depth-pruning]",
        "---",
        f"# {fp.spec}, {variant.id}",
        "",
        f"Depth-pruned with pruning-kit {_kit_version()} on {date.today().isoformat()}.",
        "",
        f"- source model: `{fp.spec}`, weights sha256 `{fp.weights_sha256}`, dtype {fp.dtype}",
        f"- removed blocks (0-based): {list(variant.drop) or 'none'}; {kept} of {lm.num_layers} kept",
        f"- healing: {_healing(healing)}",
        f"- parameters: {params:,} (tied weights counted once)",
        f"- libraries: torch {fp.torch}, transformers {fp.transformers}",
        "",
    ]
    return "\n".join(lines + _measured(row, fingerprint)) + "\n"


def _measured(row: Row | None, fp: RunFingerprint | None) -> list[str]:
    if row is None or fp is None:
        return ["Not measured: exported outside a benchmark run."]
    low, high = row.ppl_ci95
    lines = [
        "## Measured (pruning-kit)",
        "",
        f"- perplexity {row.ppl:.3f} (95% CI {low:.3f}–{high:.3f}, t interval over windows), "
        f"{row.tokens_scored} scored tokens; change vs unpruned "
        f"{num_cell(row.ppl_change_pct, 2, signed=True)}%",
        f"- KL to the unpruned model {row.kl:.4f} nats/token, top-1 agreement {row.top1_agree:.3f}",
        f"- protocol `{fp.protocol}` ctx {fp.ctx}, stride {fp.stride}, BOS {fp.bos}, eval tokens "
        f"{fp.eval_tokens} (windows {fp.windows}); corpus `{fp.corpus}` sha256 `{fp.corpus_sha256}` "
        f"({fp.corpus_source})",
        f"- device {fp.device}, dtype {fp.dtype}",
    ]
    lines += [_task_line(name, cell) for name, cell in sorted((row.tasks or {}).items())]
    for name, pct, ci in (
        ("prefill time", row.speed_change_pct, row.speed_change_ci95),
        ("decode time per token", row.decode_change_pct, row.decode_change_ci95),
    ):
        if pct is None:
            continue
        interval = "no interval" if ci is None else f"95% CI {ci[0]:+.1f} … {ci[1]:+.1f}%"
        if ci is not None and not excludes(ci, 0.0):  # as the tables' n.s.: nothing the interval lacks
            lines.append(f"- {name}: no significant change vs unpruned ({interval}, same-run timing)")
        else:
            lines.append(f"- {name} change vs unpruned: {pct:+.1f}% ({interval}, same-run timing)")
    return lines


def _healing(record: HealRecord | None) -> str:
    if record is None:
        return "none"
    settings = ", ".join(f"{k} {v}" for k, v in record.settings.items())
    return (
        f"`{record.method}` on calibration text only ({settings}); fitted in {record.seconds:.1f} s, "
        "merged into the weights (no added parameters or latency)"
    )


def _kit_version() -> str:
    try:
        return version("pruning-kit")
    except PackageNotFoundError:
        return "(not installed)"


def _task_line(name: str, cell: dict[str, Any]) -> str:
    """One task's accuracy on the card, with its interval and paired change."""
    low, high = cell["ci95"]
    line = (
        f"- task `{name}` (lm-evaluation-harness, {cell['setup']}): {cell['metric']} "
        f"{cell['value']:.1f}% (95% CI {low:.1f}–{high:.1f}) on {cell['n']} examples"
    )
    if cell.get("change_pts") is not None:
        c_low, c_high = cell["change_ci95"]
        change = f"{cell['change_pts']:+.1f} points (paired 95% CI {c_low:+.1f} … {c_high:+.1f})"
        line += f"; change vs unpruned {change}"
    return line
