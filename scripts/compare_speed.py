"""Compare two variants' speed directly, from the timing slots a run saved in results.json.

    python scripts/compare_speed.py REPORT_DIR VARIANT_A VARIANT_B

For each timing campaign of the run (prefill, prefill at the second length, decode), prints A's
time relative to B's with its 95% interval (``pruning.metrics.latency.between``: the shift
between the two variants' contrasts in the same interleaved campaign). Comparing the two
intervals against the unpruned model instead is conservative: they separate only when the gap
exceeds both half-widths.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pruning.metrics.latency import Slot, between


def main() -> None:
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    report, a, b = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    data = json.loads((report / "results.json").read_text())
    classes = {row["id"]: row.get("work") or row["id"] for row in data["rows"] if row["id"] != "base"}
    for kind, meta in data.get("speed", {}).items():
        slots = [Slot(r, v, s) for r, v, s in meta.get("slot_times", [])]
        found = {slot.variant for slot in slots}
        if a not in found or b not in found:
            print(f"{kind}: no slots of {a if a not in found else b} in this run")
            continue
        change = between(slots, "base", classes, a, b)
        verdict = "faster" if change.high < 1 else "slower" if change.low > 1 else "no significant difference"
        pct = [100 * (x - 1) for x in (change.ratio, change.low, change.high)]
        print(
            f"{kind}: {a} / {b} = {change.ratio:.4f} (95% CI {change.low:.4f}–{change.high:.4f}; "
            f"{pct[0]:+.2f}%, {pct[1]:+.1f} … {pct[2]:+.1f}): {a} {verdict}"
        )


if __name__ == "__main__":
    main()
