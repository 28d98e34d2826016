"""lm-evaluation-harness in charge of the tasks: requests, prompts, few-shot sampling, metrics.

Three lm-eval models, all ``HFLM`` subclasses over the in-memory model (never a reload), so
prompts are tokenized exactly as lm-eval tokenizes them:

- ``RecordingLM`` answers nothing: it records every tokenized log-likelihood request of a task
  run (``record_requests``), so the variants' answers can be computed together;
- ``ReplayLM`` answers a run from a table of computed answers (``replay``): lm-eval then applies
  its own filters, metrics and aggregation to them;
- plain ``HFLM`` computes its own answers per variant (``run_naive``, ``--prune-engine naive``).

Only log-likelihood tasks (``multiple_choice`` and ``loglikelihood`` output types) are
supported: a task that asks for generation or rolling log-likelihoods is refused by name.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from pruning.common.hub import hub_reachable
from pruning.tasks.scores import TaskScores
from pruning.tasks.settings import TaskSettings

if TYPE_CHECKING:
    from lm_eval.tasks import TaskManager

TokenRequest = tuple[tuple[int, ...], tuple[int, ...]]  # (context tokens, continuation tokens)
Answer = tuple[float, bool]  # (log-likelihood of the continuation, whether it is the greedy one)
SEED = 1234  # lm-eval's few-shot and sampling seeds, fixed so every run sees the same prompts


class TaskError(ValueError):
    """Tasks that cannot run: unknown names, unreachable hub data, unsupported output types."""


def lm_eval_version() -> str:
    """The installed lm-evaluation-harness version (part of the task results' identity)."""
    from importlib.metadata import version

    return version("lm_eval")


def task_manager(settings: TaskSettings) -> TaskManager:
    """lm-eval's task index: the user's folder (``--prune-tasks-path``) alone when it holds every
    task asked for (indexing lm-eval's thousands of own tasks takes tens of seconds), else with
    them. The start-up check and the evaluation share it."""
    if settings.path is not None:
        local = _index(settings.path, include_defaults=False)
        if all(name in local.task_index for name in settings.names):
            return local
    return _index(settings.path, include_defaults=True)


@functools.cache
def _index(path: Path | None, include_defaults: bool) -> TaskManager:
    """The index of ``path``'s tasks (and lm-eval's own with ``include_defaults``), built once per
    process whatever tasks are asked of it."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(path) if path else None, include_defaults=include_defaults)


def check_tasks(settings: TaskSettings, manager: TaskManager) -> None:
    """``TaskError`` for an unknown task, or one whose data would come from the hub when the hub
    cannot be reached; the message names ``--prune-tasks-path``."""
    hint = "give local tasks in lm-eval's YAML format with --prune-tasks-path DIR"
    for name in settings.names:
        entry = manager.task_index.get(name)
        if entry is None:
            raise TaskError(f"unknown lm-eval task or group {name!r}; {hint}")
        if _local(entry.yaml_path, settings.path):
            continue
        offline = os.environ.get("HF_DATASETS_OFFLINE", "0") not in ("", "0")
        if offline or not hub_reachable():
            raise TaskError(
                f"task {name!r} loads its data from the Hugging Face hub, which this machine cannot "
                f"reach; {hint} (their data in local files)"
            )


def _local(yaml_path: Path | None, folder: Path | None) -> bool:
    if yaml_path is None or folder is None:
        return False
    return folder.resolve() in yaml_path.resolve().parents


def evaluate(lm: Any, settings: TaskSettings, manager: TaskManager) -> dict[str, Any]:
    """One lm-eval run of ``settings``'s tasks on ``lm``, with per-example samples logged."""
    from lm_eval import simple_evaluate

    return dict(
        simple_evaluate(
            model=lm,
            tasks=list(settings.names),
            num_fewshot=settings.fewshot,
            limit=settings.limit,
            task_manager=manager,
            log_samples=True,
            bootstrap_iters=0,
            random_seed=SEED,
            numpy_random_seed=SEED,
            torch_random_seed=SEED,
            fewshot_random_seed=SEED,
        )
    )


def setup_text(settings: TaskSettings) -> str:
    """What makes two task results comparable besides the tasks: limit, few-shot, lm-eval version."""
    fewshot = "task default" if settings.fewshot is None else str(settings.fewshot)
    return f"limit {settings.limit or 'all'}, few-shot {fewshot}, lm-eval {lm_eval_version()}"


def per_example(result: Mapping[str, Any], setup: str = "") -> dict[str, TaskScores]:
    """Each task's per-example primary metric from an lm-eval run's samples: ``acc_norm`` where
    the task reports it, else ``acc``."""
    out = {}
    for task, samples in sorted(result["samples"].items()):
        metric = "acc_norm" if samples and "acc_norm" in samples[0] else "acc"
        if not samples or metric not in samples[0]:
            raise TaskError(f"task {task!r} reports neither acc nor acc_norm; expected an accuracy task")
        ordered = sorted(samples, key=lambda s: int(s["doc_id"]))
        ids = tuple(int(s["doc_id"]) for s in ordered)
        out[task] = TaskScores(task, metric, ids, tuple(float(s[metric]) for s in ordered), setup)
    return out


def _hflm(model: nn.Module, tokenizer: Any, settings: TaskSettings, cls: type[Any] | None = None) -> Any:
    from lm_eval.models.huggingface import HFLM

    device = str(next(model.parameters()).device)
    return (cls or HFLM)(pretrained=model, tokenizer=tokenizer, batch_size=settings.batch_size, device=device)


def _unsupported(self: Any, requests: Sequence[Any], disable_tqdm: bool = False) -> list[Any]:
    raise TaskError(
        "only log-likelihood tasks (multiple_choice, loglikelihood) are supported; a task asked for more"
    )


def record_requests(
    model: nn.Module, tokenizer: Any, settings: TaskSettings, manager: TaskManager
) -> tuple[list[TokenRequest], int]:
    """Every distinct tokenized log-likelihood request the tasks make, in first-asked order, and
    the input length lm-eval truncates them to (``HFLM.max_length``)."""
    from lm_eval.models.huggingface import HFLM

    seen: dict[TokenRequest, None] = {}

    class RecordingLM(HFLM):  # type: ignore[misc]
        def _loglikelihood_tokens(self, requests: Sequence[Any], **kwargs: Any) -> list[Answer]:
            for _, context, continuation in requests:
                seen.setdefault((tuple(context), tuple(continuation)), None)
            return [(0.0, False)] * len(requests)

        generate_until = loglikelihood_rolling = _unsupported

    lm = _hflm(model, tokenizer, settings, RecordingLM)
    evaluate(lm, settings, manager)
    return list(seen), int(lm.max_length)


def replay(
    model: nn.Module,
    tokenizer: Any,
    settings: TaskSettings,
    manager: TaskManager,
    answers: Mapping[TokenRequest, Answer],
) -> dict[str, TaskScores]:
    """lm-eval's per-example results for the answers in ``answers`` (one variant's)."""
    from lm_eval.models.huggingface import HFLM

    class ReplayLM(HFLM):  # type: ignore[misc]
        def _loglikelihood_tokens(self, requests: Sequence[Any], **kwargs: Any) -> list[Answer]:
            return [answers[(tuple(c), tuple(x))] for _, c, x in requests]

        generate_until = loglikelihood_rolling = _unsupported

    return per_example(
        evaluate(_hflm(model, tokenizer, settings, ReplayLM), settings, manager), setup_text(settings)
    )


def run_naive(
    model: nn.Module, tokenizer: Any, settings: TaskSettings, manager: TaskManager
) -> dict[str, TaskScores]:
    """lm-eval's own ``HFLM`` on ``model``: the reference the shared pass must equal."""
    return per_example(evaluate(_hflm(model, tokenizer, settings), settings, manager), setup_text(settings))
