"""probnn: probabilistic deep learning on TensorFlow Probability and Keras 3.

Importing probnn registers every serializable probnn object with Keras (so
`keras.models.load_model` finds them) but trains nothing, loads no data and
starts no plotting backend: `probnn.bayes` (which needs arviz),
`probnn.metrics`, `probnn.calibration`, `probnn.datasets` and
`probnn.plotting` are imported on first use.

One exception keeps the `probnn` command quick: when the running program IS
that command (the `probnn` console script, or `python -m probnn`), the
TensorFlow-backed part of the package is not imported with the package;
`probnn.cli` parses the arguments first (so `--help` answers in well under a
second) and then calls `probnn._finish_import()`. See `_started_as_command`.
"""

import importlib
import importlib.util
import os
import sys

__version__ = "0.1.0"


def _started_as_command():
    """True when this process is the `probnn` command itself, parsing its arguments.

    That is: `python [options] -m probnn ...` (or `-m probnn.cli`), or the
    console script `probnn` installed by pip. Any other program, including one
    that imports probnn in its own code, gets the full import.
    """
    argv = list(getattr(sys, "orig_argv", ()))
    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg == "-m":
            return i + 1 < len(argv) and argv[i + 1] in ("probnn", "probnn.cli")
        if arg.startswith("-m"):
            return arg[2:] in ("probnn", "probnn.cli")
        if arg in ("-X", "-W"):  # interpreter options that take a value
            i += 2
            continue
        if arg in ("-c", "-", "--") or not arg.startswith("-"):
            break
        i += 1
    script = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    main = sys.modules.get("__main__")
    main_file = os.path.basename(getattr(main, "__file__", None) or "")
    return script in ("probnn", "probnn.exe", "probnn-script.py") and main_file == script


_deferred = globals().get("_deferred", None)  # kept across the reload in _finish_import
if _deferred is None:
    _deferred = _started_as_command()

# The package's TensorFlow-backed API. New eager imports go INSIDE this block
# (tests/test_cli.py checks that `probnn --help` does not import TensorFlow).
if not _deferred:
    from probnn import functional, heads, layers, losses, stats  # noqa: E402,F401  (registers serializables)
    from probnn.ensemble import Ensemble  # noqa: E402,F401
    from probnn.prediction import decompose_uncertainty, predict_distribution  # noqa: E402,F401
    from probnn.training import fit  # noqa: E402,F401

_LAZY_MODULES = ("bayes", "calibration", "datasets", "metrics", "plotting", "cli")

__all__ = ["Ensemble", "decompose_uncertainty", "fit", "predict_distribution", "functional", "heads", "layers", "losses", "stats", *_LAZY_MODULES]


def _finish_import():
    """Import the TensorFlow-backed part of the package if it was deferred (see above)."""
    global _deferred
    if _deferred:
        _deferred = False
        importlib.reload(sys.modules[__name__])


def __getattr__(name):
    if name in _LAZY_MODULES:
        return importlib.import_module(f"probnn.{name}")
    if _deferred and not name.startswith("__"):
        if importlib.util.find_spec(f"{__name__}.{name}") is not None:  # `from probnn import tabular`
            return importlib.import_module(f"{__name__}.{name}")
        _finish_import()
        return getattr(sys.modules[__name__], name)
    raise AttributeError(f"module 'probnn' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY_MODULES))
