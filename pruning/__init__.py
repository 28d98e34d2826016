"""pruning-kit: depth pruning of decoder language models, measured exactly.

Public API::

    from pruning import load_model, remove_layers, count_parameters, load_corpus, perplexity
"""

from __future__ import annotations

from pruning.data.corpora import Corpus, load_corpus
from pruning.metrics.perplexity import PerplexityResult, perplexity
from pruning.models.loading import Fingerprint, LoadedModel, ModelLoadError, load_model
from pruning.models.parameters import count_parameters
from pruning.models.surgery import num_layers, remove_layers

__all__ = [
    "Corpus",
    "Fingerprint",
    "LoadedModel",
    "ModelLoadError",
    "PerplexityResult",
    "count_parameters",
    "load_corpus",
    "load_model",
    "num_layers",
    "perplexity",
    "remove_layers",
]
__version__ = "0.1.0"
