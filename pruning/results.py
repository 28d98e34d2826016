"""Result rows of a pruning run and the changes relative to the unpruned model.

Definitions:
- ``ppl_change_pct`` = 100 * (ppl / ppl_base - 1);
- ``speed_ms``: median prefill time (ms) from pytest-benchmark;
- ``speed_ratio``: median over rounds of variant / unpruned prefill time, timed back to back
  in the same run (``pruning.speed.paired_ratio``); ``speed_change_pct`` = 100 * (ratio - 1),
  negative meaning faster; without a paired ratio, speed_ms / speed_ms_base is used instead;
- ``speedup`` = 1 / ratio, the number the speed gate compares across runs;
- ``kl``: mean KL(unpruned || variant) per scored token (nats); ``top1_agree``: the fraction
  of scored positions whose argmax equals the unpruned model's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Row:
    """One variant's measurements; speed fields are None when timing did not run."""

    id: str
    removed: tuple[int, ...]
    layers: int
    ppl: float
    ppl_ci95: tuple[float, float]
    params: int
    kl: float
    top1_agree: float
    tokens_scored: int
    window_nll: tuple[float, ...] = ()
    speed_ms: float | None = None
    decode_ms_per_token: float | None = None
    ppl_change_pct: float | None = None
    speed_change_pct: float | None = None
    speedup: float | None = None
    speed_ratio: float | None = None  # paired variant / unpruned prefill time, same run

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        out = asdict(self)
        out["removed"] = list(self.removed)
        out["ppl_ci95"] = list(self.ppl_ci95)
        out["window_nll"] = list(self.window_nll)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Row:
        """Inverse of ``as_dict``; unknown keys are ignored."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["removed"] = tuple(known.get("removed", ()))
        known["ppl_ci95"] = tuple(known.get("ppl_ci95", (float("nan"), float("nan"))))
        known["window_nll"] = tuple(known.get("window_nll", ()))
        return cls(**known)


def with_changes(rows: Iterable[Row]) -> list[Row]:
    """Rows with the changes against the ``base`` row filled in (unchanged if there is none)."""
    rows = list(rows)
    base = next((r for r in rows if r.id == "base"), None)
    if base is None:
        return rows
    out = []
    for row in rows:
        speed = row.speed_ratio if row.speed_ratio is not None else _ratio(row.speed_ms, base.speed_ms)
        out.append(
            replace(
                row,
                ppl_change_pct=100.0 * (row.ppl / base.ppl - 1.0),
                speed_change_pct=None if speed is None else 100.0 * (speed - 1.0),
                speedup=None if speed is None else 1.0 / speed,
            )
        )
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b
