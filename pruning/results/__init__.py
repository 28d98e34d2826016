"""The results model that the study, the store, the gates and the reports share: a row per variant
(quality from per-window sums, changes against the unpruned model, speed and depth fits), the
run log of what a session searched, healed and spent, and the gates that judge rows against
thresholds and a baseline.

It may import every layer below it (``pruning.common`` … ``pruning.search``, ``pruning.healing``);
``pruning.study``, ``pruning.reporting`` and the plugin import it.
"""
