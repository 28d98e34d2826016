"""The ``--prune-*`` options, their ini equivalents (``prune_*``), defaults and help.

The value parsers live in ``pruning.plugin.parsers``. An option given on the command line wins
over the ini/pyproject value, which wins over the default; ``docs/options.md`` is generated from
this table (``pruning.plugin.reference``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from pruning.data.protocols import PROTOCOLS, SELECTIONS
from pruning.healing.settings import LOSSES
from pruning.plugin.parsers import (
    HEALERS,
    POLICIES,
    choice,
    corpus_spec,
    count_or_auto,
    count_or_off,
    device,
    eval_tokens,
    heal_methods,
    max_memory,
    megabytes,
    model_spec,
    percent,
    plan,
    points,
    positive,
    positive_int,
    seconds,
    speed_lengths,
    task_names,
    text,
)
from pruning.study.plan import PLAN_KINDS


def dest(name: str) -> str:
    """The argparse destination and ini key of ``--prune-NAME``: ``prune_NAME`` with underscores."""
    return "prune_" + name.replace("-", "_")


@dataclass(frozen=True)
class Option:
    """One ``--prune-NAME`` option: parser, default, metavar and help."""

    name: str
    parse: Callable[[str], Any]
    default: str | None  # in the option's own syntax; None: off (or ``shown``, worked out at run time)
    metavar: str
    help: str
    shown: str | None = None  # the default as a reader sees it, where it depends on the environment

    @property
    def default_text(self) -> str:
        """The default as help and the options reference print it."""
        return self.shown or ("off" if self.default is None else self.default)

    @property
    def dest(self) -> str:
        return dest(self.name)


OPTIONS = (
    Option(
        "model",
        model_spec,
        "smollm2-135m",
        "SPEC",
        "model spec: smollm2-135m, gemma3-270m, gguf:PATH, random:NAME, a hub id or a directory",
    ),
    Option("corpus", corpus_spec, "wikitext2", "NAME", "evaluation corpus: wikitext2 or file:PATH"),
    Option(
        "calib-corpus", corpus_spec, "wikitext2", "NAME", "calibration corpus (validation split) for criteria"
    ),
    Option(
        "calib-tokens", eval_tokens, "2048", "N", "calibration tokens for criteria and beam search, or 'all'"
    ),
    Option("protocol", choice(*PROTOCOLS), "windows", "NAME", f"perplexity protocol: {', '.join(PROTOCOLS)}"),
    Option("eval-tokens", eval_tokens, "4096", "N", "evaluation tokens (windows of --prune-ctx), or 'all'"),
    Option(
        "windows",
        choice(*SELECTIONS),
        None,
        "HOW",
        "which windows --prune-eval-tokens scores: spread (evenly across the whole text) or first "
        "(the text's first windows)",
        shown="spread (first with --prune-protocol sliding)",
    ),
    Option("ctx", positive_int, "512", "N", "window length in tokens (capped at the model's maximum)"),
    Option(
        "dtype", choice("float32", "bfloat16"), "float32", "DTYPE", "parameter dtype: float32 or bfloat16"
    ),
    Option("device", device, "cpu", "DEVICE", "cpu, cuda or cuda:N"),
    Option(
        "device-map",
        choice(*POLICIES),
        None,
        "POLICY",
        f"let accelerate place the blocks across devices: {', '.join(POLICIES)} (disk offload included)",
    ),
    Option("max-memory", max_memory, None, "SPEC", "--prune-device-map budgets, like cpu=2GiB,0=20GiB"),
    Option(
        "threads",
        count_or_auto,
        "auto",
        "N",
        "torch intra-op threads, fixed for the session; auto: the CPU count, shared among xdist workers",
    ),
    Option(
        "lanes",
        count_or_auto,
        "auto",
        "N",
        "window batches the quality engine scores at once, the threads split among them (1 at least); "
        "auto: one per thread on a CPU, up to 4 (1 on CUDA or with --prune-device-map)",
    ),
    Option("plan", plan, "sequential", "PLAN", f"variants: {', '.join(PLAN_KINDS)}"),
    Option("max-variants", positive_int, "64", "N", "refuse plans with more variants than this"),
    Option("batch-size", positive_int, "1", "N", "evaluation windows per forward pass"),
    Option(
        "max-state-mb",
        megabytes,
        "1024",
        "MIB",
        "bound on the engine's cached hidden states, and on the KV caches a race keeps between chunks",
    ),
    Option(
        "engine",
        choice("prefix", "naive"),
        "prefix",
        "NAME",
        "quality evaluation: prefix (shared prefixes) or naive",
    ),
    Option(
        "speed-seq",
        speed_lengths,
        "128",
        "N[,M]",
        "prefill benchmark length in tokens (batch 1); with N,M also an interleaved prefill campaign at M "
        "(attention's share of the work grows with the length)",
    ),
    Option("decode-tokens", positive_int, "4", "N", "greedy cached steps per decode slot"),
    Option(
        "speed-rounds",
        positive_int,
        "3",
        "N",
        "minimum interleaved timing rounds (each times every variant in a fresh random order)",
    ),
    Option(
        "speed-budget",
        seconds,
        "90",
        "SECONDS",
        "time for each timing campaign (prefill, decode); rounds stop at the target or when spent",
    ),
    Option(
        "speed-target",
        percent,
        "1.5",
        "PP",
        "stop timing once the median 95% half-width of the speed changes is at most PP points",
    ),
    Option("speed-burst", positive_int, "1", "N", "back-to-back prefill passes per slot; the fastest counts"),
    Option(
        "heal",
        heal_methods,
        None,
        "METHODS",
        f"also measure each pruned variant healed on calibration text: {', '.join(HEALERS)}",
    ),
    Option("heal-tokens", positive_int, "16384", "N", "calibration tokens healing reads (whole windows)"),
    Option("heal-steps", positive_int, "48", "N", "lora: training steps, one calibration window each"),
    Option("heal-rank", positive_int, "8", "N", "lora: adapter rank (alpha = 2 x rank)"),
    Option(
        "heal-lr", positive("learning rate", "a number", "0.001"), "0.001", "LR", "lora: peak learning rate"
    ),
    Option(
        "heal-loss",
        choice(*LOSSES),
        "ce",
        "NAME",
        "lora: ce (next-token loss) or kd (distil the unpruned model's next-token distribution)",
    ),
    Option(
        "report",
        text,
        None,
        "DIR",
        "write results.json, .csv, .md and results.html (one self-contained page) to DIR",
    ),
    Option(
        "history-json",
        text,
        None,
        "PATH",
        "write the run for github-action-benchmark: PATH (customSmallerIsBetter: perplexity, KL, "
        "latencies) and PATH's name with -bigger (customBiggerIsBetter: top-1 agreement)",
    ),
    Option(
        "samples",
        count_or_off,
        "0",
        "N",
        "greedy continuations (up to 32 new tokens) of N fixed prompts per variant, in the report; 0: off",
    ),
    Option(
        "tasks",
        task_names,
        None,
        "NAMES",
        "lm-evaluation-harness tasks or groups, comma-separated: each variant's accuracy and its paired "
        "change against the unpruned model (log-likelihood tasks)",
    ),
    Option("tasks-limit", positive_int, None, "N", "examples per task (lm-eval's limit); default: all"),
    Option(
        "tasks-fewshot", count_or_off, None, "N", "few-shot examples per prompt; default: each task's own"
    ),
    Option(
        "tasks-path",
        text,
        None,
        "DIR",
        "a folder of your own lm-eval task YAML files (lm-eval's include_path)",
    ),
    Option(
        "samples-file",
        text,
        None,
        "PATH",
        "prompts for --prune-samples, one a line (default: paragraphs of the corpus's validation split); "
        "alone, every line is a prompt",
    ),
    Option(
        "export",
        text,
        None,
        "DIR",
        "write each measured variant to DIR/<variant id> as a stock Hugging Face model with a model card",
    ),
    Option(
        "cache-dir",
        text,
        None,
        "DIR",
        "results store: every finished (variant, window) result, reused by reruns",
        shown="$PRUNING_CACHE_DIR/results, else ~/.cache/pruning-kit/results",
    ),
    Option(
        "ppl-fail",
        percent,
        "1",
        "PCT",
        "fail when perplexity rises more than PCT% over the compared baseline",
    ),
    Option(
        "speedup-fail",
        percent,
        "10",
        "PCT",
        "fail when a variant's in-run speedup interval lies wholly more than PCT% below the baseline's",
    ),
    Option(
        "acc-fail",
        points,
        None,
        "PTS",
        "fail when a task's accuracy falls more than PTS points below the compared baseline's",
    ),
    Option(
        "max-acc-drop",
        points,
        None,
        "PTS",
        "fail any variant whose task accuracy lies more than PTS points below the unpruned model's",
    ),
    Option(
        "max-ppl-increase",
        percent,
        None,
        "PCT",
        "fail any variant whose perplexity exceeds the unpruned model's by more than PCT%",
    ),
)


@dataclass(frozen=True)
class Flag:
    """One ``--prune-NAME`` switch without a value (off unless given)."""

    name: str
    help: str

    @property
    def dest(self) -> str:
        return dest(self.name)


FLAGS = (
    Flag(
        "no-cache",
        "bypass the results store: compute and store nothing (default: off; ini: prune_no_cache)",
    ),
    Flag(
        "allow-missing-baseline",
        "with --benchmark-compare, let a run without a usable baseline pass (a first run); "
        "the summary says no baseline was used (default: off, such a run fails)",
    ),
    Flag(
        "engine-bench",
        "also run the engine benchmarks in benchmarks/test_engine.py, long on a CPU (default: off)",
    ),
    Flag(
        "benchmark-table",
        "also show pytest-benchmark's own table of the prefill and decode tests: it times one pass per "
        "variant, not the interleaved campaigns the speed columns come from (default: off)",
    ),
)


def add_options(parser: pytest.Parser) -> None:
    """Register the ``--prune-*`` options and their ``prune_*`` ini keys."""
    group = parser.getgroup("pruning", "depth-pruning benchmarks (pruning-kit)")
    for opt in OPTIONS:
        shown = opt.default_text
        group.addoption(
            f"--prune-{opt.name}",
            dest=opt.dest,
            metavar=opt.metavar,
            type=opt.parse,
            default=None,
            help=f"{opt.help} (default: {shown}; ini: {opt.dest})".replace(
                "%", "%%"
            ),  # argparse formats help
        )
        parser.addini(opt.dest, f"{opt.help} (default: {shown})", default=None)
    for flag in FLAGS:
        group.addoption(f"--prune-{flag.name}", dest=flag.dest, action="store_true", help=flag.help)
    parser.addini("prune_no_cache", "bypass the results store (default: false)", type="bool", default=False)


def no_cache(config: pytest.Config) -> bool:
    """Whether ``--prune-no-cache`` (or ini ``prune_no_cache = true``) bypasses the store."""
    return bool(config.getoption("prune_no_cache")) or bool(config.getini("prune_no_cache"))


def get(config: pytest.Config, name: str) -> Any:
    """The parsed value of ``--prune-NAME``: command line, then ini, then default."""
    opt = next((o for o in OPTIONS if o.name == name), None)
    if opt is None:
        raise KeyError(f"no option --prune-{name}; the options are {', '.join(o.name for o in OPTIONS)}")
    value = config.getoption(opt.dest)
    if value is not None:
        return value
    raw = config.getini(opt.dest)
    source = f"ini key {opt.dest}"
    if raw in (None, "", []):
        raw, source = opt.default, "default"
    if raw is None:
        return None
    try:
        return opt.parse(str(raw))
    except argparse.ArgumentTypeError as exc:
        raise pytest.UsageError(f"{source}: {exc}") from None
