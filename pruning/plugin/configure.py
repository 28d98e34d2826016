"""The session's settings from the options, and the checks that fail a bad setup at start.

A wrong corpus path, device or model file is reported once, as a usage error quoting the
value, before any test runs, instead of failing every test with the same traceback.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from xdist.workermanage import parse_tx_spec_config

from pruning.common.progress import Progress
from pruning.data.specs import CorpusSpec
from pruning.data.windows import EvalProtocol
from pruning.engine.lanes import auto_lanes
from pruning.engine.options import EngineOptions
from pruning.healing.settings import HealSettings, LoraSettings
from pruning.metrics.samples import PromptError, SampleSettings, prompts_from_file
from pruning.metrics.speed import SpeedSettings
from pruning.metrics.timing import CampaignSettings
from pruning.models.sources import cache_dir
from pruning.models.specs import ModelSpec
from pruning.plugin import options
from pruning.results.gates import Thresholds
from pruning.study.settings import ModelSettings, Settings
from pruning.tasks.settings import TaskSettings


def build_settings(config: pytest.Config, progress: Progress = None) -> Settings:
    """The session's settings from the options; ``pytest.UsageError`` on bad combinations."""

    def get(name: str) -> Any:
        return options.get(config, name)

    selection = get("windows") or ("first" if get("protocol") == "sliding" else "spread")
    try:
        protocol = EvalProtocol(get("protocol"), get("ctx"), get("eval-tokens"), selection=selection)
    except ValueError as exc:
        names = "--prune-protocol/--prune-ctx/--prune-eval-tokens/--prune-windows"
        raise pytest.UsageError(f"{names}: {exc}") from None
    threads = get("threads") or max(1, (os.cpu_count() or 1) // workers(config))
    lanes = get("lanes") or auto_lanes(threads, get("device"), get("device-map"))
    return Settings(
        model=ModelSettings(
            get("model"), get("dtype"), get("device"), threads, get("device-map"), get("max-memory")
        ),
        corpus=get("corpus"),
        protocol=protocol,
        plan=get("plan"),
        max_variants=get("max-variants"),
        engine=EngineOptions(
            get("engine") == "prefix", get("max-state-mb"), get("batch-size"), progress, lanes
        ),
        speed=_speed_settings(get, threads),
        thresholds=_thresholds(get),
        report_dir=_path(get("report")),
        export_dir=_path(get("export")),
        calib_corpus=get("calib-corpus"),
        calib_tokens=get("calib-tokens"),
        store_dir=None if options.no_cache(config) else _store_dir(get("cache-dir")),
        heal=_heal_settings(get),
        samples=_sample_settings(get),
        tasks=_task_settings(get),
        history_json=_path(get("history-json")),
    )


def _speed_settings(get: Callable[[str], Any], threads: int) -> SpeedSettings:
    """The timing campaigns' settings (``pruning.metrics.speed``)."""
    lengths = get("speed-seq")
    campaign = CampaignSettings(
        min_rounds=get("speed-rounds"), budget_s=get("speed-budget"), target_pp=get("speed-target")
    )
    return SpeedSettings(lengths[0], get("decode-tokens"), get("speed-burst"), campaign, threads, lengths[1:])


def _thresholds(get: Callable[[str], Any]) -> Thresholds:
    """The gates' thresholds (``pruning.results.gates``)."""
    ppl = (get("ppl-fail"), get("speedup-fail"), get("max-ppl-increase"))
    return Thresholds(*ppl, acc_fail_pts=get("acc-fail"), max_acc_drop_pts=get("max-acc-drop"))


def _task_settings(get: Callable[[str], Any]) -> TaskSettings:
    """The ``--prune-tasks*`` options; a limit, few-shot or path without tasks is a usage error."""
    names = get("tasks") or ()
    extra = [f"--prune-{o}" for o in ("tasks-limit", "tasks-fewshot", "tasks-path") if get(o) is not None]
    if extra and not names:
        raise pytest.UsageError(f"{', '.join(extra)} without --prune-tasks: name the tasks to evaluate")
    path = _path(get("tasks-path"))
    if path is not None and not path.is_dir():
        raise pytest.UsageError(
            f"--prune-tasks-path: {str(path)!r} is not a folder; expected a folder of lm-eval task YAML files"
        )
    return TaskSettings(names, get("tasks-limit"), get("tasks-fewshot"), path)


def check_tasks(settings: Settings) -> None:
    """``pytest.UsageError`` for tasks that cannot run (``pruning.tasks.harness.check_tasks``)."""
    if not settings.tasks.on:
        return
    from pruning.tasks.harness import TaskError, task_manager
    from pruning.tasks.harness import check_tasks as check

    try:
        check(settings.tasks, task_manager(settings.tasks))
    except TaskError as exc:
        raise pytest.UsageError(f"--prune-tasks: {exc}") from None


def _path(given: str | None) -> Path | None:
    """A path option's value with ``~`` expanded; None when not given."""
    return Path(given).expanduser() if given else None


def _sample_settings(get: Callable[[str], Any]) -> SampleSettings:
    """``--prune-samples`` and ``--prune-samples-file``: a file alone makes every line a prompt."""
    count, file = get("samples"), get("samples-file")
    if not file:
        return SampleSettings(count)
    path = Path(file).expanduser()
    try:
        prompts = prompts_from_file(path, count or None)
    except PromptError as exc:
        raise pytest.UsageError(f"--prune-samples-file: {exc}") from None
    return SampleSettings(len(prompts), path)


def _store_dir(given: str | None) -> Path:
    """``--prune-cache-dir``, else ``results`` under the cache (``pruning.models.sources.cache_dir``)."""
    return Path(given).expanduser() if given else cache_dir() / "results"


def _heal_settings(get: Callable[[str], Any]) -> HealSettings:
    rank = get("heal-rank")
    lora = LoraSettings(rank, 2 * rank, get("heal-steps"), get("heal-lr"), get("heal-loss"))
    return HealSettings(get("heal") or (), get("heal-tokens"), lora=lora)


def workers(config: pytest.Config) -> int:
    """How many pytest-xdist workers the run has (1 without xdist): ``-n N`` or ``--tx`` specs."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        return int(workerinput.get("workercount", 1))
    if config.getoption("dist", "no") == "no" or not config.getoption("tx", None):
        return 1
    return len(parse_tx_spec_config(config))


def check_settings(settings: Settings) -> None:
    """``pytest.UsageError`` for a corpus file, device or model file that cannot work."""
    checks: tuple[tuple[str, CorpusSpec | ModelSpec], ...] = (
        ("--prune-corpus", settings.corpus),
        ("--prune-calib-corpus", settings.calib_corpus),
        ("--prune-model", settings.model.spec),
    )
    for option, spec in checks:
        try:
            spec.check()
        except ValueError as exc:
            raise pytest.UsageError(f"{option}: {exc}") from None
    _check_device(settings.model.device)
    check_tasks(settings)


def _check_device(device: str) -> None:
    if device == "cpu":
        return
    if not torch.cuda.is_available():
        raise pytest.UsageError(
            f"--prune-device: {device!r} needs CUDA, but this torch build ({torch.__version__}) has no "
            f"usable CUDA device; expected cpu"
        )
    index = int(device.partition(":")[2] or 0)
    count = torch.cuda.device_count()
    if index >= count:
        raise pytest.UsageError(
            f"--prune-device: {device!r} does not exist; expected cuda:0 .. cuda:{count - 1}"
        )
