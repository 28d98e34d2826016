"""pruning-kit: depth pruning of decoder language models, measured exactly.

Public API::

    from pruning import load_model, remove_layers, count_parameters, load_corpus, perplexity, export
    from pruning import heal, HealSettings, LoraSettings

The names are imported on first use (PEP 562): the pytest plugin is installed for every pytest
run and imports this package, and a run without pruning tests must not pay for torch,
transformers and peft.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pruning.data.corpora import Corpus, load_corpus
    from pruning.healing.methods import Healed, heal
    from pruning.healing.settings import HealSettings, LoraSettings
    from pruning.metrics.perplexity import PerplexityResult, perplexity
    from pruning.models.loading import (
        Fingerprint,
        LoadedModel,
        ModelLoadError,
        WeightsFingerprint,
        load_model,
    )
    from pruning.models.parameters import count_parameters
    from pruning.models.surgery import num_layers, remove_layers
    from pruning.models.variant import Variant
    from pruning.reporting.export import export

_HOMES = {  # public name -> the module that defines it
    "Corpus": "pruning.data.corpora",
    "load_corpus": "pruning.data.corpora",
    "Healed": "pruning.healing.methods",
    "heal": "pruning.healing.methods",
    "HealSettings": "pruning.healing.settings",
    "LoraSettings": "pruning.healing.settings",
    "PerplexityResult": "pruning.metrics.perplexity",
    "perplexity": "pruning.metrics.perplexity",
    "Fingerprint": "pruning.models.loading",
    "LoadedModel": "pruning.models.loading",
    "ModelLoadError": "pruning.models.loading",
    "load_model": "pruning.models.loading",
    "WeightsFingerprint": "pruning.models.loading",
    "count_parameters": "pruning.models.parameters",
    "num_layers": "pruning.models.surgery",
    "remove_layers": "pruning.models.surgery",
    "Variant": "pruning.models.variant",
    "export": "pruning.reporting.export",
}

__all__ = [
    "Corpus",
    "Fingerprint",
    "HealSettings",
    "Healed",
    "LoadedModel",
    "LoraSettings",
    "ModelLoadError",
    "PerplexityResult",
    "Variant",
    "WeightsFingerprint",
    "count_parameters",
    "export",
    "heal",
    "load_corpus",
    "load_model",
    "num_layers",
    "perplexity",
    "remove_layers",
]  # the keys of _HOMES (tests/test_layering.py checks)
__version__ = "0.9.0"


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'pruning' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later lookups skip this function
    return value
