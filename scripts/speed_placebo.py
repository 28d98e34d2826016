"""Record prefill passes on this machine, then replay them to check the speed intervals.

    python scripts/speed_placebo.py record OUT.json --seconds 150
    python scripts/speed_placebo.py replay OUT.json [--neighbours 3 --trim 3]

``record`` times SmolLM2-135M (fp32, 2 threads, 128 tokens, one prefill pass per slot) and its 30
single-block removals in a random interleaved order, half of the slots the unpruned model, and
writes ``[[variant, seconds], ...]`` in time order.

``replay`` is a placebo: it splits the unpruned model's slots at random into the reference and
a fake pooled class that runs the same work (so the true change is exactly 0), analyses the
slots with ``pruning.metrics.latency.estimates`` (the 30 removals as their own pooled class) and
reports how often the fake class's 95% interval covers 0 and its median half-width, over 200
splits. It also cuts the recording into campaigns of 45, 60 and 90 s and reports the real
class's pooled change and half-width in each (the campaign design: half the slots the reference).
``--neighbours`` and ``--trim`` replay other settings of the analysis (``--trim 0``: no cut).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np

from pruning.metrics import latency
from pruning.metrics.latency import Slot, estimates


def record(out: Path, seconds: float) -> None:
    import torch

    from pruning.metrics.speed import prefill
    from pruning.models.loading import load_model
    from pruning.models.surgery import remove_layers

    torch.set_num_threads(2)
    model = load_model("smollm2-135m").model
    ids = torch.randint(100, 20000, (1, 128))
    models = {"base": model, **{f"drop[{b}]": remove_layers(model, (b,)) for b in range(30)}}
    for m in models.values():
        prefill(m, ids)  # warm-up
    rng, passes, start = random.Random(0), [], time.perf_counter()
    while time.perf_counter() - start < seconds:
        name = "base" if rng.random() < 0.5 else f"drop[{rng.randrange(30)}]"
        t0 = time.perf_counter()
        prefill(models[name], ids)
        passes.append((name, time.perf_counter() - t0))
    out.write_text(json.dumps(passes))
    print(f"{len(passes)} passes in {seconds:.0f} s -> {out}")


def replay(path: Path, splits: int = 200) -> None:
    passes = [(name, float(seconds)) for name, seconds in json.loads(path.read_text())]
    rng = random.Random(0)
    hits, widths = 0, []
    for _ in range(splits):
        names = [("fake" if rng.random() < 0.5 else "base") if n == "base" else n for n, _ in passes]
        slots = [Slot(0, n, s) for n, (_, s) in zip(names, passes, strict=True)]
        classes = {n: "fake" if n == "fake" else "29 blocks" for n in set(names) if n != "base"}
        fake = estimates(slots, "base", classes)["fake"].change
        hits += fake.low <= 1.0 <= fake.high
        widths.append(fake.half_width_pp)
    print(
        f"placebo ({splits} splits of {len(passes)} passes): coverage of 0 {hits / splits:.3f}, "
        f"median half-width ±{np.median(widths):.2f} pp"
    )
    clock = np.cumsum([s for _, s in passes])
    for seconds in (45, 60, 90):
        found = []
        for start in np.arange(0.0, clock[-1] - seconds + 1e-9, 15.0):
            part = [p for p, t in zip(passes, clock, strict=True) if start <= t < start + seconds]
            classes = {n: "29 blocks" for n, _ in part if n != "base"}
            e = estimates([Slot(0, n, s) for n, s in part], "base", classes)
            change = next(x.change for n, x in e.items() if n != "base" and not x.off_class)
            found.append((change.ratio, change.half_width_pp))
        if not found:
            continue
        a = np.array(found)
        print(
            f"campaigns of {seconds} s ({len(a)}, every 15 s): pooled change "
            f"{100 * (a[:, 0].mean() - 1):+.2f}% (sd {100 * a[:, 0].std():.2f}), median half-width "
            f"±{np.median(a[:, 1]):.2f} pp, largest ±{a[:, 1].max():.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=("record", "replay"))
    parser.add_argument("path", type=Path)
    parser.add_argument("--seconds", type=float, default=150.0)
    parser.add_argument("--neighbours", type=int, default=latency.NEIGHBOURS)
    parser.add_argument("--trim", type=float, default=latency.TRIM)
    args = parser.parse_args()
    latency.NEIGHBOURS = args.neighbours
    latency.TRIM = args.trim if args.trim > 0 else float("inf")
    if args.what == "record":
        record(args.path, args.seconds)
    else:
        replay(args.path)


if __name__ == "__main__":
    main()
