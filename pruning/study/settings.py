"""The frozen settings of one benchmark session, one dataclass per concern."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pruning.data.specs import CorpusSpec
from pruning.data.windows import EvalProtocol
from pruning.engine.options import EngineOptions
from pruning.healing.settings import HealSettings
from pruning.metrics.samples import SampleSettings
from pruning.metrics.speed import SpeedSettings
from pruning.models.specs import ModelSpec
from pruning.results.gates import Thresholds
from pruning.study.plan import Plan
from pruning.tasks.settings import TaskSettings

DEFAULT_MODEL = ModelSpec("name", "smollm2-135m")
DEFAULT_CORPUS = CorpusSpec("wikitext2")


@dataclass(frozen=True)
class ModelSettings:
    """Which model to load and how."""

    spec: ModelSpec = DEFAULT_MODEL
    dtype: str = "float32"
    device: str = "cpu"
    threads: int | None = None
    device_map: str | None = None  # an accelerate policy (pruning.models.placement); None: all on device
    max_memory: dict[int | str, str] | None = None

    @property
    def placement(self) -> str:
        """Where the model runs, as the run fingerprint records it."""
        return self.device if self.device_map is None else f"{self.device}, device_map {self.device_map}"


@dataclass(frozen=True)
class Settings:
    """Everything a pruning benchmark session needs, built once from the options."""

    model: ModelSettings
    corpus: CorpusSpec
    protocol: EvalProtocol
    plan: Plan
    max_variants: int
    engine: EngineOptions
    speed: SpeedSettings
    thresholds: Thresholds
    report_dir: Path | None = None
    calib_corpus: CorpusSpec = DEFAULT_CORPUS
    calib_tokens: int | None = 2048
    store_dir: Path | None = None  # the results store; None: off
    export_dir: Path | None = None  # each measured variant as a stock model directory; None: off
    heal: HealSettings = field(default_factory=HealSettings)  # no methods: no healed variants
    samples: SampleSettings = field(default_factory=SampleSettings)  # count 0: no samples
    tasks: TaskSettings = field(default_factory=TaskSettings)  # no names: no task accuracy
    history_json: Path | None = None  # github-action-benchmark's files (pruning.reporting.history)
