"""Register probnn's serializable objects with Keras as soon as Keras is imported.

Keras looks up custom objects by registered name ("probnn>NormalHead") in a
global table that the `register_keras_serializable` decorators fill when
their modules are imported. The `probnn` namespace is lazy (`import probnn`
must not import TensorFlow), so without help a script that does
`import probnn, keras` and then `keras.models.load_model(...)` would find the
table empty.

`register_when_keras_is_imported` closes that gap. If Keras is already
imported, it imports the registering modules at once. Otherwise it installs
an import hook (a meta-path finder that wraps the loaders of `keras` and of
probnn's submodules) and registers right after Keras's module has executed,
or, when the import of Keras came from inside a probnn module, right after
the outermost probnn module being imported has finished (registering in the
middle of it would import half-initialised modules). Then the hook removes
itself. A program that never imports Keras never pays for TensorFlow.
"""

import importlib
import importlib.abc
import sys

# The modules whose import registers every serializable probnn class.
SERIALIZABLE_MODULES = ("probnn.heads", "probnn.layers", "probnn.losses", "probnn.ensemble")


def register():
    """Import the modules that register probnn's serializable objects with Keras."""
    _remove_hook()
    for name in SERIALIZABLE_MODULES:
        importlib.import_module(name)


class _WrappedLoader(importlib.abc.Loader):
    """A module's own loader, reporting to the hook before and after the module executes."""

    def __init__(self, loader, hook, is_keras):
        self._loader, self._hook, self._is_keras = loader, hook, is_keras

    def __getattr__(self, name):  # get_code, get_source, is_package, ...: runpy and inspect use them
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        if self._is_keras:
            self._loader.exec_module(module)
            self._hook.keras_loaded()
            return
        self._hook.depth += 1
        try:
            self._loader.exec_module(module)
        finally:
            self._hook.depth -= 1
        self._hook.probnn_module_loaded()


class _KerasImportHook(importlib.abc.MetaPathFinder):
    """Finds nothing itself: hands back the spec the other finders give, with a wrapped loader."""

    def __init__(self):
        self.depth = 0  # probnn modules executing right now
        self.pending = False  # Keras arrived while a probnn module was executing

    def find_spec(self, fullname, path, target=None):
        is_keras = fullname == "keras"
        if not (is_keras or fullname.startswith("probnn.")):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _WrappedLoader(spec.loader, self, is_keras)
                return spec
        return None

    def keras_loaded(self):
        if self.depth == 0:
            register()
        else:
            self.pending = True

    def probnn_module_loaded(self):
        if self.depth == 0 and self.pending:
            register()


def _remove_hook():
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _KerasImportHook)]


def register_when_keras_is_imported():
    """Register now if Keras is imported, else as soon as it is (see the module docstring)."""
    if "keras" in sys.modules:
        register()
    elif not any(isinstance(f, _KerasImportHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _KerasImportHook())
