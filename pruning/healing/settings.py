"""The settings of healing, one frozen dataclass; what of them determines each method's result."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

LOSSES = ("ce", "kd")


@dataclass(frozen=True)
class LoraSettings:
    """LoRA healing: adapter size and the short training run (CPU-sized defaults).

    ``loss``: ``ce`` is plain next-token cross-entropy on the calibration text, ``kd`` distils
    the unpruned model's next-token distribution (KL(unpruned || healed) per position). The
    default is the one that recovered more perplexity on SmolLM2: ``ce`` (README, "Healing").
    """

    rank: int = 8
    alpha: int = 16
    steps: int = 48
    lr: float = 1e-3
    loss: str = "ce"
    seed: int = 0


@dataclass(frozen=True)
class HealSettings:
    """Which healing methods run, on how many calibration tokens, with what settings.

    ``tokens``: calibration tokens healing reads (whole windows of the evaluation protocol's
    length, from the ``validation`` split); ``ridge``: the ``linear`` fit's ridge, relative to
    the mean eigenvalue of its normal matrix.
    """

    methods: tuple[str, ...] = ()
    tokens: int = 16384
    ridge: float = 1e-4
    lora: LoraSettings = field(default_factory=LoraSettings)

    def of(self, method: str) -> dict[str, Any]:
        """The settings that determine ``method``'s result (part of its cache key and model card)."""
        if method == "lora":
            return {"tokens": self.tokens, **asdict(self.lora)}
        return {"tokens": self.tokens, "ridge": self.ridge}
