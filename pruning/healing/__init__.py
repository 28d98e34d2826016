"""Healing: win back some of a pruned variant's loss, on calibration text only.

Owns the healing methods (``linear``: a closed-form map folded into a kept block; ``lora``:
a peft adapter trained and merged), their settings, and the cache of what they fitted.
May import ``common``, ``models``, ``data`` and ``metrics``; never the engine, searches,
reporting, the study or pytest.
"""
