"""Tables and report files: terminal text, Markdown, CSV and JSON.

The sequential table follows the original study: the unpruned model first, then each
removal in block order. Other plans are sorted by perplexity. Fidelity and decode columns
come after the study's columns. Healed variants follow their unhealed variant, with three more
columns: perplexity change against it, the share of the loss won back, the healing time.
Files are written atomically; a failed run writes ``results.failed.*`` instead of replacing a
report that is already there.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pruning.common.files import atomic_write
from pruning.healing.methods import HealRecord
from pruning.metrics.latency import excludes, labels
from pruning.metrics.timing import Campaign
from pruning.reporting.task_tables import task_cells, task_columns
from pruning.results.rows import TIMED, Row, SpeedFits

CSV_FIELDS = (
    "id",
    "removed",
    "layers",
    "ppl",
    "ppl_ci95",
    "params",
    "speed_ms",
    "decode_ms_per_token",
    "ppl_change_pct",
    "ppl_change_ci95",
    "same_as_best",
    "speed_change_pct",
    "speed_change_ci95",
    "decode_change_pct",
    "decode_change_ci95",
    "long_seq",
    "long_ms",
    "long_change_pct",
    "long_change_ci95",
    "kl",
    "kl_ci95",
    "top1_agree",
    "top1_ci95",
    "tokens_scored",
    "heal",
    "heal_s",
    "unhealed_change_pct",
    "recovered_pct",
    "tasks",
)


def order_rows(rows: Sequence[Row], sequential: bool) -> list[Row]:
    """Base first; then block order (sequential) or ascending perplexity; each healed row right
    under its unhealed one (methods by name), or at the end when that one was not measured."""
    base = [r for r in rows if r.id == "base"]
    rest = [r for r in rows if r.id != "base" and not r.heal]
    rest.sort(key=(lambda r: r.variant.sort_key) if sequential else (lambda r: (r.ppl, r.variant.sort_key)))
    healed = sorted((r for r in rows if r.heal), key=lambda r: r.variant.sort_key)
    out = base[:]
    for row in rest:
        out += [row, *(h for h in healed if h.variant.unhealed == row.variant)]
    return out + [h for h in healed if h not in out]


def table(rows: Sequence[Row], sequential: bool) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the study's table with fidelity and decode columns appended."""
    first = "layer removed" if sequential else "layers removed"
    layers = "layers" if sequential else "remaining layers"
    header = [
        first,
        layers,
        "perplexity (↓)",
        "ppl 95% CI",
        "speed (ms) ↓",
        "parameters (M)",
        "ppl change (%)",
        "ppl change 95% CI (paired)",
        "speed change (%)",
        "speed 95% CI",
        "KL (nats)",
        "KL 95% CI",
        "top-1 agree",
        "top-1 95% CI",
        "decode (ms/tok)",
        "decode change (%)",
        "decode 95% CI",
    ]
    ordered = order_rows(rows, sequential)
    cells = [_cells(r) for r in ordered]
    long = next((r.long_seq for r in rows if r.long_seq), None)
    if long is not None:
        header += [f"speed@{long} (ms)", f"speed@{long} change (%)", f"speed@{long} 95% CI"]
        cells = [[*c, *_long_cells(r)] for c, r in zip(cells, ordered, strict=True)]
    if any(r.heal for r in rows):
        header += ["ppl vs unhealed (%)", "recovered (%)", "healing (s)"]
        cells = [[*c, *_heal_cells(r)] for c, r in zip(cells, ordered, strict=True)]
    for name, metric in task_columns(rows):
        header += [f"{name} {metric} (%)", f"{name} Δ pts (paired 95% CI)"]
        cells = [[*c, *task_cells(r, name)] for c, r in zip(cells, ordered, strict=True)]
    return header, cells


def _long_cells(r: Row) -> list[str]:
    reference = r.id == "base"
    return [
        num_cell(r.long_ms, 2),
        change_cell(r.long_change_pct, r.long_change_ci95, reference),
        interval_cell(r.long_change_ci95, r.long_off_fit, reference, r.long_off_class),
    ]


def _heal_cells(r: Row) -> list[str]:
    return [
        num_cell(r.unhealed_change_pct, 2, signed=True),
        num_cell(r.recovered_pct, 1),
        num_cell(r.heal_s, 1),
    ]


def removed_cell(r: Row) -> str:
    """What the variant removed (``none`` for the unpruned model), and its healing method."""
    removed = "none" if r.id == "base" else ",".join(r.variant.units)
    return removed + (f" +{r.heal}" if r.heal else "")


def _cells(r: Row) -> list[str]:
    reference = r.id == "base"
    return [
        removed_cell(r),
        str(r.layers),
        f"{r.ppl:.3f}",
        "—" if math.isnan(r.ppl_ci95[0]) else f"{r.ppl_ci95[0]:.2f}–{r.ppl_ci95[1]:.2f}",  # one window: none
        num_cell(r.speed_ms, 2),
        f"{r.params / 1e6:.2f}",
        num_cell(r.ppl_change_pct, 2, signed=True),
        paired_cell(r.ppl_change_ci95, r.same_as_best, reference),
        change_cell(r.speed_change_pct, r.speed_change_ci95, reference),
        interval_cell(r.speed_change_ci95, r.speed_off_fit, reference, r.speed_off_class),
        f"{r.kl:.4f}",
        mean_cell(r.kl_ci95, 4, reference),
        f"{r.top1_agree:.3f}",
        mean_cell(r.top1_ci95, 3, reference),
        num_cell(r.decode_ms_per_token, 2),
        change_cell(r.decode_change_pct, r.decode_change_ci95, reference),
        interval_cell(r.decode_change_ci95, r.decode_off_fit, reference, r.decode_off_class),
    ]


def paired_cell(ci: tuple[float, float] | None, same_as_best: bool | None, reference: bool) -> str:
    """A paired 95% interval of the perplexity change, marked ``≈ best`` where the variant cannot
    be told from the best of its size (``pruning.metrics.paired.same_as_best``)."""
    if reference:
        return "reference"
    if ci is None:
        return "—"
    return f"{ci[0]:+.2f} … {ci[1]:+.2f}" + (" ≈ best" if same_as_best else "")


def mean_cell(ci: tuple[float, float] | None, digits: int, reference: bool) -> str:
    """A 95% interval of a per-token mean against the unpruned model (KL, top-1 agreement);
    the unpruned model is the reference, a row from an older report has none."""
    if reference:
        return "reference"
    if ci is None:
        return "—"
    return f"{ci[0]:.{digits}f}–{ci[1]:.{digits}f}"


def change_cell(pct: float | None, ci: tuple[float, float] | None, reference: bool) -> str:
    """A speed change: signed when its 95% interval excludes 0, ``n.s.`` when it does not."""
    if pct is None:
        return "—"
    if reference or ci is None:
        return f"{pct:+.2f}"
    return f"{pct:+.2f}" if excludes(ci, 0.0) else "n.s."


def interval_cell(
    ci: tuple[float, float] | None, off_fit: bool | None, reference: bool, off_class: bool | None = None
) -> str:
    """A 95% interval in percent; ``off fit`` where it excludes the depth fit's prediction,
    ``off class`` where the variant left its work class's pool (the interval is its own)."""
    if reference:
        return "reference" if ci is not None else "—"
    if ci is None:
        return "—"
    marks = [m for m, on in (("off class", off_class), ("off fit", off_fit)) if on]
    return f"{ci[0]:+.1f} … {ci[1]:+.1f}" + "".join(f" {m}" for m in marks)


def rank_lines(rows: Sequence[Row]) -> list[str]:
    """Per number of removed units, the best removal, or the removals that cannot be told from
    it (``Row.same_as_best``: paired intervals against the best, Bonferroni-corrected)."""
    by_size: dict[int, list[Row]] = {}
    for row in rows:
        if row.same_as_best is not None:
            by_size.setdefault(len(row.variant.units), []).append(row)
    lines = []
    for size, group in sorted(by_size.items()):
        if len(group) < 2:
            continue
        tied = sorted((r for r in group if r.same_as_best), key=lambda r: r.ppl)
        units = f"{size} unit{'s' if size > 1 else ''}"
        if len(tied) == 1:
            others = len(group) - 1
            lines.append(f"best removal of {units}: {tied[0].id}, clear of the other {others} (paired)")
        else:
            names = ", ".join(r.id for r in tied)
            lines.append(f"removals of {units} indistinguishable from the best (paired): {names}")
    return lines


def speed_meta(campaigns: Mapping[str, Campaign], fits: SpeedFits | None) -> dict[str, Any]:
    """The timing campaigns and depth fits for ``results.json``."""
    out: dict[str, Any] = {}
    for kind, campaign in campaigns.items():
        fit = None if fits is None else fits.of(kind)
        out[kind] = {
            "rounds": campaign.rounds,
            "slots": len(campaign.slots),
            "elapsed_s": campaign.elapsed_s,
            "stopped": campaign.stopped,
            "median_half_width_pp": campaign.half_width_pp,
            "classes": class_sizes(campaign),
            "retimed": list(campaign.retimed),  # flagged off their class after the rounds, re-timed
            "slot_times": [[slot.round, slot.variant, slot.seconds] for slot in campaign.slots],
            "fit": None if fit is None else asdict(fit),
        }
    return out


def speed_lines(campaigns: Mapping[str, Campaign], fits: SpeedFits | None, rows: Sequence[Row]) -> list[str]:
    """One line per timing campaign with its depth fit, for the terminal and Markdown."""
    lines = []
    for kind, campaign in campaigns.items():
        fit = None if fits is None else fits.of(kind)
        unit = TIMED[kind].unit
        seq = next((r.long_seq for r in rows if r.long_seq), None)
        label = f"prefill@{seq}" if kind == "prefill_long" and seq else kind
        text = (
            f"{label} timing: {len(campaign.changes)} variants interleaved over {campaign.rounds} rounds "
            f"({len(campaign.slots)} slots, {campaign.elapsed_s:.0f} s, stopped at the {campaign.stopped}); "
            f"median 95% half-width ±{campaign.half_width_pp:.2f} pp; {_pooling(campaign)}"
        )
        if fit is not None:
            off = [r.id for r in rows if getattr(r, TIMED[kind].off_fit)]
            chance = 0.05 * (len(campaign.changes) - 1)
            low, high = fit.per_block_ci
            text += f"; depth fit {fit.per_block_ms:.3f} {unit} per block (95% CI {low:.3f}–{high:.3f}) "
            text += f"+ {fit.overhead_ms:.2f} {unit} overhead, "
            text += (
                f"R² {fit.r2:.3f} over {fit.points} work classes"
                if fit.points > 2
                else f"R² {fit.r2:.3f} by construction: a line through {fit.points} work classes is exact "
                "and checks nothing"
            )
            if fit.points > 2:
                text += f"; off the fit (95% intervals, ~{chance:.1f} expected by chance): "
                text += ", ".join(off) or "none"
        lines.append(text)
    return lines


def class_sizes(campaign: Campaign) -> dict[str, int]:
    """How many variants each work class of ``campaign`` holds (the reference not counted)."""
    return dict(Counter(labels(campaign.estimates, campaign.reference, campaign.classes).values()))


def _pooling(campaign: Campaign) -> str:
    """``changes pooled over 2 work class(es) of 30, 30 variants; off their class (reported on
    their own after re-timing; ~0.1 expected by chance): drop[attn7] (re-timed, back in their
    class: drop[mlp3])``, or ``each variant its own work class: no pooling``."""
    sizes = sorted(class_sizes(campaign).values(), reverse=True)
    pooled = [n for n in sizes if n > 1]
    if not pooled:
        return "each variant its own work class: no pooling"
    off = [n for n, e in campaign.estimates.items() if e.off_class]
    chance = 0.05 * len(pooled)  # the off-class test is Bonferroni over each class
    shown = ", ".join(map(str, pooled[:6])) + (", …" if len(pooled) > 6 else "")
    back = [n for n in campaign.retimed if n not in off]
    retimed = f" (re-timed, back in their class: {', '.join(back)})" if back else ""
    return (
        f"changes pooled over {len(pooled)} work class(es) of {shown} variants; off their class "
        f"(reported on their own after re-timing; ~{chance:.1f} expected by chance): "
        f"{', '.join(off) or 'none'}{retimed}"
    )


def healing_lines(healings: Sequence[HealRecord]) -> list[str]:
    """One line per healed variant: its fit's time, whether it was reused, its loss curve's ends."""
    lines = []
    for healing in healings:
        curve = f", loss {healing.losses[0]:.4f} -> {healing.losses[-1]:.4f}" if healing.losses else ""
        where = "fitted then, reused from the results store" if healing.reused else "fitted now"
        lines.append(
            f"healing {healing.variant}: {healing.seconds:.1f} s on calibration text ({where}){curve}"
        )
    return lines


def render_text(header: Sequence[str], cells: Sequence[Sequence[str]]) -> str:
    """A plain aligned table with ``|`` separators."""
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(header)]
    lines = [" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def render_markdown(header: Sequence[str], cells: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines) + "\n"


def to_json(rows: Sequence[Row], meta: Mapping[str, Any]) -> str:
    """``{"fingerprint": ..., <meta>..., "rows": [...]}`` as indented JSON."""
    return json.dumps({**meta, "rows": [r.as_dict() for r in rows]}, indent=2)


def to_csv(rows: Sequence[Row]) -> str:
    """CSV with ``CSV_FIELDS``; lists are written space-separated."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for row in rows:
        data = row.as_dict()
        writer.writerow([_csv_cell(data[f]) for f in CSV_FIELDS])
    return buf.getvalue()


def write_reports(directory: Path, files: Mapping[str, str], failed: bool) -> list[Path]:
    """Write ``{name: text}`` into ``directory`` atomically; see the module docstring."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        target = directory / name
        if failed and target.exists():
            stem, dot, ext = name.partition(".")
            target = directory / f"{stem}.failed{dot}{ext}"
        atomic_write(target, text)
        written.append(target)
    return written


def num_cell(value: float | None, digits: int, signed: bool = False) -> str:
    """``value`` with ``digits`` decimals (``+`` sign if ``signed``), or ``—`` when absent."""
    if value is None:
        return "—"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _csv_cell(value: Any) -> Any:
    if isinstance(value, dict):  # tasks: compact JSON in one cell
        return json.dumps(value, separators=(",", ":"))
    return " ".join(f"{v:.6g}" for v in value) if isinstance(value, list) else value
