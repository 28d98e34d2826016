"""Minor page faults of the quality engine in one lane or two (``pruning/common/memory.py``).

    python scripts/page_faults.py LANES
    MALLOC_ARENA_MAX=1 python scripts/page_faults.py LANES

Evaluates the unpruned SmolLM2-135M and two single removals (blocks 15, 27) on four windows of
512 random token ids, after a warm-up on two, and prints the minor page faults and seconds of
that call.
"""

from __future__ import annotations

import resource
import sys
import time

import torch

from pruning.data.windows import Window
from pruning.engine.options import EngineOptions
from pruning.engine.prefix import evaluate_variants
from pruning.models.loading import load_model
from pruning.models.variant import BASE, Variant


def main() -> None:
    lanes = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    model = load_model("smollm2-135m").model
    generator = torch.Generator().manual_seed(0)
    windows = [Window(torch.randint(0, 49152, (512,), generator=generator), 1) for _ in range(4)]
    variants = [BASE, Variant((15,)), Variant((27,))]
    options = EngineOptions(progress=False, lanes=lanes)
    evaluate_variants(model, windows[:2], variants, options)  # warm-up
    before, begin = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
    evaluate_variants(model, windows, variants, options)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    print(f"{lanes} lane(s): {faults} minor page faults, {time.perf_counter() - begin:.2f} s")


if __name__ == "__main__":
    main()
