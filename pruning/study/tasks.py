"""A study's task accuracy: every variant's per-example lm-eval results, stored and reused.

Plain variants (those that share the loaded weights) answer in one shared pass
(``pruning.tasks.shared``) unless the engine is naive, when lm-eval's ``HFLM`` runs each one;
healed variants, whose weights differ, always run alone. Each variant's results are stored as it
finishes (``TaskStore``): a rerun costs nothing, and an interrupted run computes only the
variants it had not finished, with the same results. Inside the shared pass, each request batch's
answers are kept as it finishes (``PassCheckpoint``), so a pass killed midway resumes at its
first unfinished batch; the checkpoint is removed once every variant of the pass is stored.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pruning.common.digest import digest_json
from pruning.common.files import atomic_write
from pruning.common.progress import open_bar
from pruning.engine.store import run_key
from pruning.models.variant import Variant
from pruning.tasks import harness
from pruning.tasks.scores import TaskScores
from pruning.tasks.settings import TaskSettings
from pruning.tasks.shared import BatchAnswers, TaskCost, shared_answers

if TYPE_CHECKING:
    from pruning.study.study import Study

VariantTasks = dict[str, TaskScores]  # task name -> per-example results


class TaskStore:
    """Per-variant task results under ``root/tasks-<key>/<variant id>.json``; the key digests the
    run's identity (model, corpus, protocol, versions, machine: ``pruning.engine.store.run_key``),
    the tasks' configuration files, the limit, the few-shot setting and lm-eval's version."""

    def __init__(self, root: Path, key: str) -> None:
        self.folder = root / f"tasks-{key}"

    def get(self, variant: Variant) -> VariantTasks | None:
        path = self.folder / f"{variant.id}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return {name: TaskScores.from_dict(d) for name, d in data.items()}

    def put(self, variant: Variant, found: VariantTasks) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write(
            self.folder / f"{variant.id}.json", json.dumps({n: s.as_dict() for n, s in found.items()})
        )


class PassCheckpoint:
    """The shared pass's finished batches under ``folder/<batch index>.json``, each variant's
    answers; the caller names the folder after what fixes the batches (the task store's key: the
    requests, and the batch size)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def get(self, index: int) -> BatchAnswers | None:
        try:
            data = json.loads((self.folder / f"{index}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return {vid: [(float(ll), bool(greedy)) for ll, greedy in found] for vid, found in data.items()}

    def put(self, index: int, answers: BatchAnswers) -> None:
        """Keep ``answers`` beside the other variants' answers to the batch (another pass's, e.g. an
        xdist worker's; a lost race only costs a recomputation: ``get`` is checked per variant)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        merged = {**(self.get(index) or {}), **answers}
        atomic_write(self.folder / f"{index}.json", json.dumps(merged))

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def task_key(settings: TaskSettings, manager: Any, run: str) -> str:
    """The store key of ``settings`` for the run keyed ``run``."""
    configs = {}
    for name in settings.names:
        entry = manager.task_index.get(name)
        path = getattr(entry, "yaml_path", None)
        configs[name] = Path(path).read_text(encoding="utf-8") if path else name
    files = sorted(settings.path.rglob("*")) if settings.path else []
    data = {str(f.relative_to(settings.path)): f.read_text(encoding="utf-8") for f in files if f.is_file()}  # type: ignore[arg-type]
    version = harness.lm_eval_version()
    return digest_json(
        {
            "run": run,
            "configs": configs,
            "files": data,
            "limit": settings.limit,
            "fewshot": settings.fewshot,
            "lm_eval": version,
        }
    )


def evaluate_tasks(study: Study, variants: Sequence[Variant]) -> tuple[dict[Variant, VariantTasks], TaskCost]:
    """Every variant's per-example task results (from the store where it has them), with what was
    computed where and the shared pass's counted cost."""
    cfg = study.settings.tasks
    manager = harness.task_manager(cfg)
    store = None
    if study.settings.store_dir is not None:
        store = TaskStore(study.settings.store_dir, task_key(cfg, manager, run_key(study.fingerprint)))
    found: dict[Variant, VariantTasks] = {}
    for v in variants:
        cached = store.get(v) if store is not None else None
        if cached is not None:
            found[v] = cached
    missing = [v for v in variants if v not in found]
    shared = [v for v in missing if v.shares_prefixes] if study.settings.engine.share_prefixes else []
    cost = TaskCost(0.0, 0.0, 0)
    if shared:
        answered, cost = _in_one_pass(study, shared, manager, store)
        found.update(answered)
    alone = [v for v in missing if v not in found]
    bar = open_bar("tasks: variants run by lm-eval alone", len(alone), study.settings.engine.progress)
    for v in alone:
        found[v] = harness.run_naive(study.model_for(v), study.lm.tokenizer, cfg, manager)
        if store is not None:
            store.put(v, found[v])
        bar.update(1)
    bar.close()
    return found, replace(cost, in_pass=len(shared), alone=len(alone), stored=len(variants) - len(missing))


def _in_one_pass(
    study: Study, variants: Sequence[Variant], manager: Any, store: TaskStore | None
) -> tuple[dict[Variant, VariantTasks], TaskCost]:
    """``variants`` answered in one shared pass (checkpointed per batch) and scored by lm-eval,
    each stored as it is scored; and the pass's counted cost."""
    cfg, lm, progress = study.settings.tasks, study.lm, study.settings.engine.progress
    checkpoint = None if store is None else PassCheckpoint(store.folder / f"pass-{cfg.batch_size}")
    requests, max_length = harness.record_requests(lm.model, lm.tokenizer, cfg, manager)
    answers, cost = shared_answers(
        lm.model, requests, variants, max_length, cfg.batch_size, progress, checkpoint
    )
    found: dict[Variant, VariantTasks] = {}
    bar = open_bar("tasks: variants scored by lm-eval", len(variants), progress)
    for v in variants:
        found[v] = harness.replay(lm.model, lm.tokenizer, cfg, manager, answers[v])
        if store is not None:
            store.put(v, found[v])
        bar.update(1)
    bar.close()
    if checkpoint is not None:
        checkpoint.remove()
    return found, cost
