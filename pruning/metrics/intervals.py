"""The interval every per-token mean in the reports uses: the ratio estimator's t interval over
windows.

A per-token mean over windows (mean NLL, mean NLL difference, KL per token, top-1 share) is the
ratio ``r = sum s_w / sum N_w`` of per-window sums ``s_w`` to scored tokens ``N_w``. Its
linearised standard error over the n windows is
``se = sqrt(n / (n - 1) * sum (s_w - r N_w)^2) / sum N``, and its interval at level 1 - alpha is
``r +- t(1 - alpha/2, n - 1) se``. The windows are the sampling unit: tokens within a window are
not independent, windows spread over a text nearly are (``pruning.data.windows``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats


def ratio_t(sums: Sequence[float], tokens: Sequence[int], alpha: float = 0.05) -> tuple[float, float]:
    """The interval of ``sum sums / sum tokens`` at level 1 - ``alpha`` (module docstring); it
    needs two windows at least."""
    if len(sums) < 2:
        raise ValueError(f"an interval over windows needs at least 2 windows; got {len(sums)}")
    s, n = np.asarray(sums, dtype=np.float64), np.asarray(tokens, dtype=np.float64)
    r = float(s.sum() / n.sum())
    se = math.sqrt(s.size / (s.size - 1) * float(((s - r * n) ** 2).sum())) / float(n.sum())
    half = float(stats.t.ppf(1.0 - alpha / 2, s.size - 1)) * se
    return r - half, r + half
