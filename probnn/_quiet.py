"""Keep TensorFlow's C++ start-up lines out of scripts and notebooks that import probnn first.

Importing TensorFlow writes a dozen lines to file descriptor 2 from C++
(absl's "All log messages before absl::InitializeLog() ...", oneDNN, "Could not
find cuda drivers", CPU features, and `failed call to cuInit` on a machine
without a GPU). `TF_CPP_MIN_LOG_LEVEL` silences only some of them: the lines
logged before absl is initialised ignore it. In a notebook they land in the
cell outputs.

`quiet_tensorflow_import()` (called by `import probnn`) does nothing if the
user set `TF_CPP_MIN_LOG_LEVEL` or TensorFlow is already imported. Otherwise
it sets `TF_CPP_MIN_LOG_LEVEL=3` (TensorFlow's C++ INFO, WARNING and ERROR
log lines off; Python exceptions are unaffected) and installs an import hook:
while `tensorflow` is imported, file descriptor 2 goes to a temporary file;
afterwards the start-up lines are dropped and anything else is written back
to stderr (all of it if the import fails). To see TensorFlow's lines, set
`TF_CPP_MIN_LOG_LEVEL=0` before importing probnn.
"""

import contextlib
import importlib.abc
import os
import re
import sys
import tempfile

# absl log lines ("I0000 00:00:... port.cc:153] ...") and the two lines around them.
START_UP_LINE = re.compile(
    r"^([IWEF]\d{4} \d\d:\d\d:[\d.]+\s+\d+ \S+:\d+\]"
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|To enable the following instructions:)"
)


def is_start_up_line(line):
    """Whether `line` is one of TensorFlow's C++ start-up log lines.

    Example:
    >>> is_start_up_line("E0000 00:00:1796.5   17450 cuda_platform.cc:52] failed call to cuInit: ...")
    True
    >>> is_start_up_line("Traceback (most recent call last):")
    False
    """
    return bool(START_UP_LINE.match(line))


@contextlib.contextmanager
def _stderr_captured():
    """Send file descriptor 2 to a temporary file; yield it; restore fd 2."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield sink
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class _QuietLoader(importlib.abc.Loader):
    """TensorFlow's own loader, with fd 2 captured while the module executes."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def __getattr__(self, name):  # get_code, is_package, ...: runpy (`python -m probnn`) asks for them
        return getattr(self._loader, name)

    def exec_module(self, module):
        _remove_hook()
        error = None
        with _stderr_captured() as sink:
            try:
                self._loader.exec_module(module)
            except BaseException as exc:  # replayed in full below, once fd 2 is back
                error = exc
            sink.seek(0)
            lines = sink.read().decode(errors="replace").splitlines()
        kept = [line for line in lines if error is not None or not is_start_up_line(line)]
        if kept:
            sys.stderr.write("\n".join(kept) + "\n")
        if error is not None:
            raise error


class _TensorFlowImportHook(importlib.abc.MetaPathFinder):
    """Finds nothing itself: hands back the spec of `tensorflow` with a quiet loader."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "tensorflow":
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _QuietLoader(spec.loader)
                return spec
        return None


def _remove_hook():
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _TensorFlowImportHook)]


_SET_HERE = []  # "TF_CPP_MIN_LOG_LEVEL" once quiet_tensorflow_import has set it


def quiet_tensorflow_import():
    """Hide TensorFlow's start-up lines, unless `TF_CPP_MIN_LOG_LEVEL` is set (see the module docstring)."""
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ or "tensorflow" in sys.modules:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    _SET_HERE.append("TF_CPP_MIN_LOG_LEVEL")
    if not any(isinstance(f, _TensorFlowImportHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _TensorFlowImportHook())


def undo():
    """Show TensorFlow's lines after all (`probnn ... --verbose`): remove the hook and the log level set here."""
    _remove_hook()
    while _SET_HERE:
        os.environ.pop(_SET_HERE.pop(), None)
