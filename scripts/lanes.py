"""The quality engine in one lane or in lanes, alternated; optionally beside a busy process.

    python scripts/lanes.py [--busy] [REPEATS]

Evaluates the unpruned SmolLM2-135M and five single removals (blocks 3, 9, 15, 21, 27) on
four windows of 512 random token ids with ``pruning.engine.prefix.evaluate_variants``, REPEATS
times (default 4) each way, alternating: one lane with all of torch's threads, then one lane
per thread. ``--busy`` runs a one-thread busy loop in another process meanwhile, as another
user's job would on a shared machine. Prints the seconds of every call and checks that both
ways give identical sums. ``pruning/engine/lanes.py`` quotes what it gave on this project's
2-core machine.
"""

from __future__ import annotations

import subprocess
import sys
import time

import torch

from pruning.data.windows import Window
from pruning.engine.options import EngineOptions
from pruning.engine.prefix import evaluate_variants
from pruning.models.loading import load_model
from pruning.models.variant import BASE, Variant


def main() -> None:
    args = [a for a in sys.argv[1:] if a != "--busy"]
    repeats = int(args[0]) if args else 4
    model = load_model("smollm2-135m").model
    generator = torch.Generator().manual_seed(0)
    windows = [Window(torch.randint(0, 49152, (512,), generator=generator), 1) for _ in range(4)]
    variants = [BASE, *(Variant((k,)) for k in (3, 9, 15, 21, 27))]
    threads = torch.get_num_threads()
    busy = None
    if "--busy" in sys.argv:
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        sums = {}
        for _ in range(repeats):
            for lanes in (1, threads):
                begin = time.perf_counter()
                options = EngineOptions(progress=False, lanes=lanes)
                found, _ = evaluate_variants(model, windows, variants, options)
                print(f"{lanes} lane(s), {threads} threads: {time.perf_counter() - begin:.2f} s", flush=True)
                sums[lanes] = {v: s.windows for v, s in found.items()}
        print("identical sums:", sums[1] == sums[threads])
    finally:
        if busy is not None:
            busy.kill()


if __name__ == "__main__":
    main()
