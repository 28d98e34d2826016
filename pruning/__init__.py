"""pruning-kit: depth pruning of decoder language models, measured exactly.

Public API::

    from pruning import load_model, remove_layers, count_parameters, load_corpus, perplexity, export
    from pruning import heal, HealSettings, LoraSettings
"""

from __future__ import annotations

from pruning.data.corpora import Corpus, load_corpus
from pruning.healing.methods import Healed, heal
from pruning.healing.settings import HealSettings, LoraSettings
from pruning.metrics.perplexity import PerplexityResult, perplexity
from pruning.models.loading import Fingerprint, LoadedModel, ModelLoadError, load_model
from pruning.models.parameters import count_parameters
from pruning.models.surgery import num_layers, remove_layers
from pruning.models.variant import Variant
from pruning.reporting.export import export

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
    "count_parameters",
    "export",
    "heal",
    "load_corpus",
    "load_model",
    "num_layers",
    "perplexity",
    "remove_layers",
]
__version__ = "0.1.0"
