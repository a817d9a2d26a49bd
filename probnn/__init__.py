"""probnn: probabilistic deep learning on TensorFlow Probability and Keras 3.

`import probnn` is light: the namespace is lazy (PEP 562 module `__getattr__`),
so `probnn.heads`, `probnn.fit`, `probnn.bayes`, ... import their modules, and
TensorFlow, on first use. The `probnn` command relies on this to answer
`--help` before TensorFlow is imported.

Keras finds probnn's serializable objects (heads, layers, losses, `Ensemble`)
by their registered names, so they must be registered before
`keras.models.load_model` reads a probnn model. They are registered as soon as
Keras is imported in a process that imported probnn (at once if Keras already
was): `import probnn, keras; keras.models.load_model("model.keras")` works.
See `probnn._registration`.
"""

import importlib
import importlib.util

from probnn import _quiet, _registration

# Quiet import: unless TF_CPP_MIN_LOG_LEVEL is set, TensorFlow's C++ start-up
# lines (oneDNN, CUDA drivers, cuInit, CPU features) are kept out of scripts and
# notebooks that import probnn before TensorFlow; TF_CPP_MIN_LOG_LEVEL=0 shows
# them. See probnn._quiet.
_quiet.quiet_tensorflow_import()

__version__ = "0.1.0"

# Public names defined in submodules: name -> module.
_EXPORTS = {
    "Ensemble": "probnn.ensemble",
    "GridSearch": "probnn.grid",
    "decompose_uncertainty": "probnn.prediction",
    "fit": "probnn.training",
    "predict_distribution": "probnn.prediction",
}
_SUBMODULES = (
    "bayes",
    "calibration",
    "datasets",
    "functional",
    "heads",
    "layers",
    "losses",
    "metrics",
    "plotting",
    "stats",
    "training",
)

__all__ = sorted(_EXPORTS) + list(_SUBMODULES)

_registration.register_when_keras_is_imported()


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")  # sets the package attribute too
    raise AttributeError(f"module 'probnn' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
