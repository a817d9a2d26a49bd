"""probnn: probabilistic deep learning on TensorFlow Probability and Keras 3.

Importing probnn registers every serializable probnn object with Keras (so
`keras.models.load_model` finds them) but trains nothing, loads no data and
starts no plotting backend: `probnn.bayes` (which needs arviz),
`probnn.metrics`, `probnn.datasets` and
`probnn.plotting` are imported on first use.
"""

import importlib

__version__ = "0.1.0"

from probnn import functional, heads, layers, losses, stats  # noqa: E402  (registers serializables)
from probnn.prediction import decompose_uncertainty, predict_distribution  # noqa: E402
from probnn.training import fit  # noqa: E402

_LAZY_MODULES = ("bayes", "datasets", "metrics", "plotting", "cli")

__all__ = ["decompose_uncertainty", "fit", "predict_distribution", "functional", "heads", "layers", "losses", "stats", *_LAZY_MODULES]


def __getattr__(name):
    if name in _LAZY_MODULES:
        return importlib.import_module(f"probnn.{name}")
    raise AttributeError(f"module 'probnn' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY_MODULES))
