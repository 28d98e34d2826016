"""The ``--prune-*`` options, their ini equivalents (``prune_*``) and their parsers.

Every parser raises ``argparse.ArgumentTypeError`` quoting the value and saying what is
allowed, so bad values fail at parse time. An option given on the command line wins over
the ini/pyproject value, which wins over the default.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from pruning.common.registry import unknown_name
from pruning.healing.settings import LOSSES
from pruning.models.sources import cache_dir
from pruning.study.plan import PLAN_KINDS, Plan, parse_plan

N = TypeVar("N", int, float)

# The choices of three options, whose homes import torch, accelerate or peft: pytest imports this
# module for every run, so they are spelled here and tests/plugin/test_options.py holds them equal
# to ``pruning.data.windows.PROTOCOLS``, ``pruning.models.placement.POLICIES`` and the names in
# ``pruning.healing.methods.HEALERS``.
PROTOCOLS = ("windows", "sliding", "llamacpp")
POLICIES = ("auto", "balanced", "balanced_low_0", "sequential")
HEALERS = ("linear", "lora")


def _number(value: str, kind: type[N]) -> N | None:
    """``value`` as an int or float, or None when it is not one (the caller names what it expected)."""
    try:
        return kind(value.strip())
    except ValueError:
        return None


def positive_int(value: str) -> int:
    """An int >= 1."""
    number = _number(value, int)
    if number is None or number < 1:
        raise argparse.ArgumentTypeError(f"invalid value {value!r}; expected an integer >= 1")
    return number


def speed_lengths(value: str) -> tuple[int, ...]:
    """``128`` or ``128,1024``: the prefill length, and optionally a longer second one."""
    parts = [_number(p.strip(), int) for p in value.split(",")]
    lengths = tuple(p for p in parts if p is not None and p >= 1)
    if (
        not 1 <= len(parts) <= 2
        or len(lengths) != len(parts)
        or (len(lengths) == 2 and lengths[1] <= lengths[0])
    ):
        raise argparse.ArgumentTypeError(
            f"invalid value {value!r}; expected a length N >= 1 or two increasing lengths N,M (128,1024)"
        )
    return lengths


def max_memory(value: str) -> dict[int | str, str]:
    """``cpu=2GiB,0=20GiB``: accelerate's per-device budget (an int key is a GPU index)."""
    out: dict[int | str, str] = {}
    for part in value.split(","):
        device, _, size = part.strip().partition("=")
        if not device or not size:
            raise argparse.ArgumentTypeError(
                f"invalid memory budget {value!r}; expected DEVICE=SIZE pairs, like cpu=2GiB,0=20GiB"
            )
        out[int(device) if device.isdigit() else device] = size
    return out


def count_or_auto(value: str) -> int | None:
    """An int >= 1, or ``auto`` (None: the session works the count out, see its option's help)."""
    return _int_or_word(value, "auto", 1, "value")


def eval_tokens(value: str) -> int | None:
    """An int >= 2, or ``all`` (None) for the whole corpus."""
    return _int_or_word(value, "all", 2, "token count")


def _int_or_word(value: str, word: str, minimum: int, noun: str) -> int | None:
    if value.strip().lower() == word:
        return None
    number = _number(value, int)
    if number is None or number < minimum:
        expected = f"expected an integer >= {minimum} or {word!r}"
        raise argparse.ArgumentTypeError(f"invalid {noun} {value!r}; {expected}")
    return number


def percent(value: str) -> float:
    """A percentage >= 0 (the % sign is optional)."""
    number = _number(value.strip().rstrip("%"), float)
    if number is None or not number >= 0:
        raise argparse.ArgumentTypeError(
            f"invalid percentage {value!r}; expected a number >= 0, like 1 or 2.5"
        )
    return number


def positive(kind: str, unit: str, example: str) -> Callable[[str], float]:
    """A parser for a number > 0 (a duration, a size), naming ``kind`` and ``unit`` in errors."""

    def parse(value: str) -> float:
        number = _number(value, float)
        if number is None or not number > 0:
            raise argparse.ArgumentTypeError(f"invalid {kind} {value!r}; expected {unit} > 0, like {example}")
        return number

    return parse


seconds = positive("duration", "seconds", "50")
megabytes = positive("size", "MiB", "1024")


def choice(*allowed: str) -> Callable[[str], str]:
    """A parser accepting exactly one of ``allowed``."""

    def parse(value: str) -> str:
        if value not in allowed:
            raise argparse.ArgumentTypeError(
                f"invalid choice {value!r}; expected one of {', '.join(allowed)}"
            )
        return value

    return parse


def device(value: str) -> str:
    """``cpu``, ``cuda`` or ``cuda:N``."""
    head, _, index = value.partition(":")
    if (head == "cpu" and not index) or (head == "cuda" and (not index or index.isdigit())):
        return value
    raise argparse.ArgumentTypeError(f"invalid device {value!r}; expected cpu, cuda or cuda:N")


def plan(value: str) -> Plan:
    """A variant plan (see ``pruning.study.plan``)."""
    try:
        return parse_plan(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def heal_methods(value: str) -> tuple[str, ...]:
    """Comma-separated healing methods, like ``linear,lora`` (each once)."""
    names = tuple(n.strip() for n in value.split(","))
    for name in names:
        if name not in HEALERS:
            raise argparse.ArgumentTypeError(f"in {value!r}: {unknown_name('healing method', name, HEALERS)}")
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(
            f"invalid methods {value!r}; expected each method once, like linear,lora"
        )
    return names


def text(value: str) -> str:
    """A non-empty string."""
    if not value.strip():
        raise argparse.ArgumentTypeError(f"invalid value {value!r}; expected a non-empty string")
    return value.strip()


@dataclass(frozen=True)
class Option:
    """One ``--prune-NAME`` option: parser, default, metavar and help."""

    name: str
    parse: Callable[[str], Any]
    default: str | None  # in the option's own syntax; None: off
    metavar: str
    help: str

    @property
    def dest(self) -> str:
        return "prune_" + self.name.replace("-", "_")


OPTIONS = (
    Option(
        "model",
        text,
        "smollm2-135m",
        "SPEC",
        "model spec: smollm2-135m, gemma3-270m, gguf:PATH, random:NAME, a hub id or a directory",
    ),
    Option("corpus", text, "wikitext2", "NAME", "evaluation corpus: wikitext2 or file:PATH"),
    Option("calib-corpus", text, "wikitext2", "NAME", "calibration corpus (validation split) for criteria"),
    Option(
        "calib-tokens", eval_tokens, "2048", "N", "calibration tokens for criteria and beam search, or 'all'"
    ),
    Option("protocol", choice(*PROTOCOLS), "windows", "NAME", f"perplexity protocol: {', '.join(PROTOCOLS)}"),
    Option(
        "eval-tokens", eval_tokens, "4096", "N", "evaluation tokens from the start of the corpus, or 'all'"
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
    Option("report", text, None, "DIR", "write results.json, results.csv and results.md to DIR"),
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
        str(cache_dir() / "results"),
        "DIR",
        "results store: every finished (variant, window) result, reused by reruns",
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
        "max-ppl-increase",
        percent,
        None,
        "PCT",
        "fail any variant whose perplexity exceeds the unpruned model's by more than PCT%",
    ),
)


def add_options(parser: pytest.Parser) -> None:
    """Register the ``--prune-*`` options and their ``prune_*`` ini keys."""
    group = parser.getgroup("pruning", "depth-pruning benchmarks (pruning-kit)")
    for opt in OPTIONS:
        shown = "off" if opt.default is None else opt.default
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
    group.addoption(
        "--prune-no-cache",
        dest="prune_no_cache",
        action="store_true",
        help="bypass the results store: compute and store nothing (default: off; ini: prune_no_cache)",
    )
    parser.addini("prune_no_cache", "bypass the results store (default: false)", type="bool", default=False)
    group.addoption(
        "--prune-allow-missing-baseline",
        dest="prune_allow_missing_baseline",
        action="store_true",
        help="with --benchmark-compare, let a run without a usable baseline pass (a first run); "
        "the summary says no baseline was used (default: off, such a run fails)",
    )
    group.addoption(
        "--prune-engine-bench",
        dest="prune_engine_bench",
        action="store_true",
        help="also run the engine benchmarks in benchmarks/test_engine.py, ~40 min on 2 cores (default: off)",
    )


def no_cache(config: pytest.Config) -> bool:
    """Whether ``--prune-no-cache`` (or ini ``prune_no_cache = true``) bypasses the store."""
    return bool(config.getoption("prune_no_cache")) or bool(config.getini("prune_no_cache"))


def get(config: pytest.Config, name: str) -> Any:
    """The parsed value of ``--prune-NAME``: command line, then ini, then default."""
    opt = next(o for o in OPTIONS if o.name == name)
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
